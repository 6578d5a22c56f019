//! Nothing at run time: this crate's build script checks, before llama.cpp's CMake
//! build gets far, that the SDK of each GPU backend feature strix-run was built with is
//! installed, and fails with one message saying what to install.
