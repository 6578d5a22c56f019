//! Hardware profiles: a [`Hardware`] saved as JSON, to describe a machine once and
//! plan for it anywhere (`--hw-profile FILE`).

use std::path::Path;

use super::error::{HardwareError, ProfileError};
use super::{Hardware, HardwareSource};

impl Hardware {
    /// Reads a profile and checks it is physically possible. The result's `source`
    /// is the profile's path.
    pub fn load_profile(path: &Path) -> Result<Hardware, HardwareError> {
        let text = crate::files::read_text(path).map_err(|source| ProfileError::Read { source })?;
        let deserializer = &mut serde_json::Deserializer::from_str(&text);
        let mut hw: Hardware = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.to_string();
            // serde_json appends " at line L column C"; the position is given separately.
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_string(),
                None => message,
            };
            ProfileError::Parse {
                path: path.to_path_buf(),
                field,
                line: inner.line(),
                column: inner.column(),
                message,
            }
        })?;
        hw.source = HardwareSource::Profile(path.to_path_buf());
        hw.validate()?;
        Ok(hw)
    }

    /// Writes this description as pretty JSON.
    pub fn save_profile(&self, path: &Path) -> Result<(), ProfileError> {
        let text = serde_json::to_string_pretty(self).map_err(|source| ProfileError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
        crate::files::write_atomically(path, crate::files::Existing::Replace, |f| {
            std::io::Write::write_all(f, (text + "\n").as_bytes())
        })
        .map_err(|source| ProfileError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(source),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("box.json");
        let hw = Hardware::preset("strix-halo-128-win")?;
        hw.save_profile(&path)?;
        let back = Hardware::load_profile(&path)?;
        assert_eq!(back.source, HardwareSource::Profile(path.clone()));
        assert_eq!(
            Hardware {
                source: hw.source.clone(),
                ..back
            },
            hw
        );
        Ok(())
    }

    #[test]
    fn errors_name_the_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("nope.json");
        let msg = Hardware::load_profile(&missing)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("nope.json"), "{msg}");

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"os": "linux", "cpu": 3}"#)?;
        let msg = Hardware::load_profile(&bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("bad.json") && msg.contains("line"), "{msg}");

        let unwritable = dir.path().join("no/such/dir/x.json");
        let hw = Hardware::preset("rtx-4090")?;
        let msg = hw
            .save_profile(&unwritable)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("x.json"), "{msg}");
        Ok(())
    }

    #[test]
    fn impossible_profiles_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("big-carveout.json");
        let mut hw = Hardware::preset("strix-halo-64")?;
        hw.carveout_bytes = Some(hw.ram_total_bytes + 1);
        hw.save_profile(&path)?;
        let err = Hardware::load_profile(&path).err();
        assert!(
            matches!(
                err,
                Some(HardwareError::Invalid {
                    field: "carveout",
                    ..
                })
            ),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn a_minimal_hand_written_profile_loads() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("min.json");
        std::fs::write(
            &path,
            r#"{"os":"linux","cpu":{"physical_cores":8,"logical_threads":16},
               "ram_total_bytes":34359738368,"ram_available_bytes":30000000000,
               "unified_memory":false,"cpu_bandwidth_bytes_per_s":60000000000,
               "backends":[{"backend":"rocm","version":"7.2"}]}"#,
        )?;
        let hw = Hardware::load_profile(&path)?;
        assert_eq!(hw.cpu.physical_cores, 8);
        assert!(hw.gpus.is_empty());
        assert_eq!(
            hw.backends[0].version.map(|v| v.to_string()).as_deref(),
            Some("7.2")
        );
        Ok(())
    }
}
