//! Escape attempts against the image store and imgadm's archive readers.
