//! Fuzzes the GGUF header reader and the model summary built on it: any byte string
//! must give a header or a typed error, never a panic, hang or huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.gguf");
    if let Ok(header) = strix_run::gguf::read_header(Cursor::new(data), path) {
        let model = strix_run::gguf::GgufModel::single(path, header);
        let _ = strix_run::model::ModelMeta::from_gguf(&model, path);
    }
});
