pub mod llama_gguf;
