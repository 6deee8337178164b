//! Virtual networking for zones (etherstubs, VNICs, bandwidth, anti-spoofing). Built in the networking issue.
