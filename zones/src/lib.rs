//! The zone model: configuration ([`model`]), the zonecfg command language ([`lang`]), the
//! persistent store ([`store`]), the state machine ([`state`]) and the `create` templates
//! ([`templates`]).

pub mod idrange;
pub mod idshift;
pub mod image;
pub mod kvm;
pub mod kvm_disk;
pub mod kvm_root;
pub mod lang;
pub mod live;
pub mod model;
pub mod privileges;
pub mod spec;
pub mod state;
pub mod storage;
pub mod store;
pub mod templates;
pub mod weakened;
