"""The bridge to the Rust core (`flyte._core`): the only package that imports it, with one
module per module of `rs_controller/src/python/`. Everything else in the SDK goes through
these modules, so what crosses the bridge, and its types, can be read in one place."""
