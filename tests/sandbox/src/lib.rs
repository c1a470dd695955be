pub mod emulators;
