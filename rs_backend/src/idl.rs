//! flyteidl2's module tree, plus the packages the pinned crate generates but does not
//! compile (ClusterService, DataProxyService). Generated code refers to its neighbours
//! through `super::`, so the extra packages sit beside re-exports of everything else.

#[allow(
    clippy::all,
    dead_code,
    missing_docs,
    unused_qualifications,
    non_camel_case_types
)]
pub mod flyteidl {
    pub use flyteidl2::flyteidl::*;
    include!(concat!(env!("OUT_DIR"), "/idl_extra.rs"));
}

pub use flyteidl2::google;
