//! The zone model. Built in the zones issue.
