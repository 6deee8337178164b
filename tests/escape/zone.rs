//! Escape attempts against the zone tools' host side: zlogin's reads of the zone's files, zoneadm's verbs and bad input.
