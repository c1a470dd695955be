
pub mod emulators;
