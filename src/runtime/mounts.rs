//! mounts (placeholder while the real module is built on its branch)
pub fn known_options() -> Vec<&'static str> {
    todo!()
}
