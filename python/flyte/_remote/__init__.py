"""Running on a backend: inside action processes, and submitting runs to one."""
