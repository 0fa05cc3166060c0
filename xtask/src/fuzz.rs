//! The fuzz smoke run (filled in by the fuzzing work).

/// Runs every fuzz target briefly.
pub fn smoke() -> Result<(), String> {
    Ok(())
}
