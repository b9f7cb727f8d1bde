//! Distribution capability flags (`erts/emulator/beam/dist.h`, `lib/kernel/include/dist.hrl`)
//! and the rules `dist_util.erl` applies to them: `adjust_flags/2` (the connection uses the
//! AND of both sides), `expand_mandatory_25_flag/1` and `check_dflags/2` (which flags each
//! OTP release requires).
//!
//! Every bit below was checked against OTP 28's `erts/emulator/beam/dist.h` and OTP 29.1's
//! installed `lib/kernel/include/dist.hrl` (kernel 11.0.4), which agree on all of them; the
//! test `bits_match_dist_hrl` repeats the numbers. Not listed: the emulator-internal
//! `DFLAG_ETS_COMPRESSED` (0x8000), `DFLAG_PENDING_CONNECT` (0x200000) and
//! `DFLAG_LOCAL_EXT` (bit 36), which never travel in a handshake.

use std::fmt;

/// A set of `DFLAG_*` bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DistFlags(pub u64);

macro_rules! flags {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl DistFlags {
            $($(#[$doc])* pub const $name: DistFlags = DistFlags($value);)*
        }
        /// Every named flag with its OTP name, lowest bit first.
        pub const FLAG_NAMES: &[(DistFlags, &str)] = &[$((DistFlags::$name, stringify!($name))),*];
    };
}

flags! {
    /// The node wants to be visible; both sides must set it for a visible connection.
    PUBLISHED = 0x1;
    /// Obsolete atom cache.
    ATOM_CACHE = 0x2;
    /// Multi-word references (mandatory).
    EXTENDED_REFERENCES = 0x4;
    /// MONITOR_P / DEMONITOR_P / MONITOR_P_EXIT.
    DIST_MONITOR = 0x8;
    /// Fun tags (mandatory).
    FUN_TAGS = 0x10;
    /// Monitors by registered name.
    DIST_MONITOR_NAME = 0x20;
    /// Obsolete.
    HIDDEN_ATOM_CACHE = 0x40;
    /// NEW_FUN_EXT (mandatory).
    NEW_FUN_TAGS = 0x80;
    /// Extended pids and ports (mandatory).
    EXTENDED_PIDS_PORTS = 0x100;
    /// EXPORT_EXT (mandatory from OTP 25).
    EXPORT_PTR_TAG = 0x200;
    /// BIT_BINARY_EXT (mandatory from OTP 25).
    BIT_BINARIES = 0x400;
    /// NEW_FLOAT_EXT (mandatory from OTP 25).
    NEW_FLOATS = 0x800;
    /// Unicode io protocol.
    UNICODE_IO = 0x1000;
    /// Atom cache in the distribution header.
    DIST_HDR_ATOM_CACHE = 0x2000;
    /// SMALL_ATOM_EXT.
    SMALL_ATOM_TAGS = 0x4000;
    /// UTF-8 atoms (mandatory).
    UTF8_ATOMS = 0x10000;
    /// MAP_EXT (mandatory from OTP 25).
    MAP_TAG = 0x20000;
    /// 32-bit creations (mandatory).
    BIG_CREATION = 0x40000;
    /// SEND_SENDER control messages.
    SEND_SENDER = 0x80000;
    /// Any term as a seq_trace label.
    BIG_SEQTRACE_LABELS = 0x100000;
    /// PAYLOAD_EXIT and friends: exit reasons as a separate term.
    EXIT_PAYLOAD = 0x400000;
    /// Fragmented messages.
    FRAGMENTS = 0x800000;
    /// The version 6 handshake (mandatory from OTP 25).
    HANDSHAKE_23 = 0x1000000;
    /// The UNLINK_ID link protocol (mandatory from OTP 26).
    UNLINK_ID = 0x2000000;
    /// Shorthand for "every flag OTP 25 makes mandatory".
    MANDATORY_25_DIGEST = 0x4000000;
    /// SPAWN_REQUEST / SPAWN_REPLY (needed by erpc, and by rpc:call from OTP 25).
    SPAWN = 1 << 32;
    /// Ask the acceptor for a dynamic name.
    NAME_ME = 1 << 33;
    /// 64-bit pid data, V4_PORT_EXT, 5-word references (mandatory from OTP 26).
    V4_NC = 1 << 34;
    /// Process aliases (ALIAS_SEND).
    ALIAS = 1 << 35;
    /// OTP 28: the ALTACT_SIG_SEND control message (priority messages, alias sends and
    /// exit signals to aliases); OTP 28 sends alias messages with it when negotiated.
    ALTACT_SIG = 1 << 37;
    /// OTP 29: native records (`RECORD_EXT` terms). A BEAM sends a native record only to
    /// a node that offers it.
    NATIVE_RECORDS = 1 << 38;
}

impl DistFlags {
    /// No flag.
    pub const EMPTY: DistFlags = DistFlags(0);

    /// What OTP 25 refuses to connect without.
    pub const MANDATORY_25: DistFlags = DistFlags(
        Self::EXTENDED_REFERENCES.0
            | Self::FUN_TAGS.0
            | Self::EXTENDED_PIDS_PORTS.0
            | Self::UTF8_ATOMS.0
            | Self::NEW_FUN_TAGS.0
            | Self::BIG_CREATION.0
            | Self::NEW_FLOATS.0
            | Self::MAP_TAG.0
            | Self::EXPORT_PTR_TAG.0
            | Self::BIT_BINARIES.0
            | Self::HANDSHAKE_23.0,
    );

    /// What OTP 26 adds to the mandatory set (27, 28 and 29 add nothing).
    pub const MANDATORY_26: DistFlags = DistFlags(Self::V4_NC.0 | Self::UNLINK_ID.0);

    /// Everything OTP 26 and later refuse to connect without.
    pub const MANDATORY: DistFlags = DistFlags(Self::MANDATORY_25.0 | Self::MANDATORY_26.0);

    /// What beamlink offers when it runs hidden: the mandatory set plus monitors, spawn,
    /// aliases, SEND_SENDER, payload exits, the distribution header's atom cache and
    /// fragments (what every OTP 25+ node offers), ALTACT_SIG (OTP 28+) and NATIVE_RECORDS
    /// (OTP 29+; older releases AND them away); `PUBLISHED` only with `--visible`.
    pub const BEAMLINK_DEFAULT: DistFlags = DistFlags(
        Self::MANDATORY.0
            | Self::DIST_HDR_ATOM_CACHE.0
            | Self::FRAGMENTS.0
            | Self::MANDATORY_25_DIGEST.0
            | Self::DIST_MONITOR.0
            | Self::DIST_MONITOR_NAME.0
            | Self::SPAWN.0
            | Self::ALIAS.0
            | Self::SEND_SENDER.0
            | Self::EXIT_PAYLOAD.0
            | Self::UNICODE_IO.0
            | Self::BIG_SEQTRACE_LABELS.0
            | Self::SMALL_ATOM_TAGS.0
            | Self::ALTACT_SIG.0
            | Self::NATIVE_RECORDS.0,
    );

    /// True if every bit of `other` is set here.
    pub fn contains(self, other: DistFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Bits of `other` that are not set here.
    pub fn missing(self, other: DistFlags) -> DistFlags {
        DistFlags(other.0 & !self.0)
    }

    /// Both sets together.
    pub fn union(self, other: DistFlags) -> DistFlags {
        DistFlags(self.0 | other.0)
    }

    /// Bits set in both.
    pub fn intersection(self, other: DistFlags) -> DistFlags {
        DistFlags(self.0 & other.0)
    }

    /// A peer's flags as `dist_util` reads them: `MANDATORY_25_DIGEST` stands for the whole
    /// OTP 25 mandatory set.
    pub fn expand_digest(self) -> DistFlags {
        if self.contains(Self::MANDATORY_25_DIGEST) {
            self.union(Self::MANDATORY_25)
        } else {
            self
        }
    }

    /// The flags a connection uses: what both sides offer (`dist_util:adjust_flags/2`).
    pub fn negotiate(ours: DistFlags, theirs: DistFlags) -> DistFlags {
        ours.intersection(theirs.expand_digest())
    }

    /// The mandatory flags a peer lacks (empty if it may connect).
    pub fn missing_mandatory(theirs: DistFlags) -> DistFlags {
        theirs.expand_digest().missing(Self::MANDATORY)
    }

    /// True if the connection is hidden (not both sides published).
    pub fn is_hidden(self) -> bool {
        !self.contains(Self::PUBLISHED)
    }

    /// The OTP names of the set bits, as `dist_util` prints them (without `DFLAG_`).
    pub fn names(self) -> Vec<&'static str> {
        FLAG_NAMES
            .iter()
            .filter(|(f, _)| self.contains(*f))
            .map(|(_, n)| *n)
            .collect()
    }

    /// The oldest OTP release that insists on each missing flag, for error messages.
    pub fn required_since(flag: DistFlags) -> Option<u32> {
        if Self::MANDATORY_26.contains(flag) {
            Some(26)
        } else if Self::MANDATORY_25.contains(flag) {
            Some(25)
        } else {
            None
        }
    }
}

impl fmt::Debug for DistFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DistFlags({:#x}: {})", self.0, self.names().join("|"))
    }
}

impl fmt::Display for DistFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl std::ops::BitOr for DistFlags {
    type Output = DistFlags;
    fn bitor(self, rhs: DistFlags) -> DistFlags {
        self.union(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mandatory_sets_match_dist_h() {
        assert_eq!(DistFlags::MANDATORY_25.0, 0x0107_0F94);
        assert_eq!(DistFlags::MANDATORY.0, 0x4_0307_0F94);
        assert_eq!(DistFlags::MANDATORY_25_DIGEST.0, 0x400_0000);
    }

    #[test]
    fn default_is_hidden_and_complete() {
        let ours = DistFlags::BEAMLINK_DEFAULT;
        assert!(ours.is_hidden());
        assert_eq!(DistFlags::missing_mandatory(ours), DistFlags::EMPTY);
        assert!(ours.contains(DistFlags::DIST_HDR_ATOM_CACHE));
        assert!(ours.contains(DistFlags::FRAGMENTS));
    }

    #[test]
    fn what_real_releases_offer_is_accepted() {
        // What OTP 25/27 and OTP 29.1 offered a hidden node in their challenge (captured).
        for offered in [0x0D_07DF_7FBCu64, 0x6D_07DF_7FBC] {
            let theirs = DistFlags(offered);
            assert_eq!(DistFlags::missing_mandatory(theirs), DistFlags::EMPTY);
            let chosen = DistFlags::negotiate(DistFlags::BEAMLINK_DEFAULT, theirs);
            assert!(chosen.contains(DistFlags::SPAWN | DistFlags::ALIAS));
            assert!(chosen.is_hidden());
        }
    }

    #[test]
    fn bits_match_dist_hrl() {
        // lib/kernel/include/dist.hrl of OTP 29.1 (kernel 11.0.4), name by name.
        let otp: &[(&str, u64)] = &[
            ("PUBLISHED", 0x01),
            ("ATOM_CACHE", 0x02),
            ("EXTENDED_REFERENCES", 0x04),
            ("DIST_MONITOR", 0x08),
            ("FUN_TAGS", 0x10),
            ("DIST_MONITOR_NAME", 0x20),
            ("HIDDEN_ATOM_CACHE", 0x40),
            ("NEW_FUN_TAGS", 0x80),
            ("EXTENDED_PIDS_PORTS", 0x100),
            ("EXPORT_PTR_TAG", 0x200),
            ("BIT_BINARIES", 0x400),
            ("NEW_FLOATS", 0x800),
            ("UNICODE_IO", 0x1000),
            ("DIST_HDR_ATOM_CACHE", 0x2000),
            ("SMALL_ATOM_TAGS", 0x4000),
            ("UTF8_ATOMS", 0x10000),
            ("MAP_TAG", 0x20000),
            ("BIG_CREATION", 0x40000),
            ("SEND_SENDER", 0x80000),
            ("BIG_SEQTRACE_LABELS", 0x100000),
            ("EXIT_PAYLOAD", 0x400000),
            ("FRAGMENTS", 0x0080_0000),
            ("HANDSHAKE_23", 0x0100_0000),
            ("UNLINK_ID", 0x0200_0000),
            ("MANDATORY_25_DIGEST", 0x0400_0000),
            ("SPAWN", 0x01 << 32),
            ("NAME_ME", 0x02 << 32),
            ("V4_NC", 0x04 << 32),
            ("ALIAS", 0x08 << 32),
            ("ALTACT_SIG", 0x20 << 32),
            ("NATIVE_RECORDS", 0x40 << 32),
        ];
        assert_eq!(FLAG_NAMES.len(), otp.len());
        for ((flag, name), (otp_name, bits)) in FLAG_NAMES.iter().zip(otp) {
            assert_eq!((*name, flag.0), (*otp_name, *bits));
        }
    }

    #[test]
    fn digest_expands_for_otp25_peers() {
        let peer = DistFlags(
            DistFlags::MANDATORY_25_DIGEST.0 | DistFlags::V4_NC.0 | DistFlags::UNLINK_ID.0,
        );
        assert_eq!(DistFlags::missing_mandatory(peer), DistFlags::EMPTY);
        let old = DistFlags(DistFlags::MANDATORY_25.0);
        assert_eq!(
            DistFlags::missing_mandatory(old).names(),
            vec!["UNLINK_ID", "V4_NC"]
        );
        assert_eq!(DistFlags::required_since(DistFlags::UNLINK_ID), Some(26));
    }
}
