//! SOCKS5 wire constants (RFC 1928, the subset XEP-0065 uses).

/// A SOCKS5 constant that is not defined (or not supported here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} value {value:#04x}")]
pub struct UnknownValue {
    /// Which field.
    pub kind: &'static str,
    /// The byte found.
    pub value: u8,
}

/// The constants, one per line.
#[rustfmt::skip]
mod consts {
    /// SOCKS protocol version 5.
    pub const VERSION: u8            = 0x05;
    /// The RSV byte.
    pub const RESERVED: u8           = 0x00;

    /// Method: no authentication (the one XEP-0065 uses).
    pub const METHOD_NO_AUTH: u8     = 0x00;
    /// Method: GSSAPI.
    pub const METHOD_GSSAPI: u8      = 0x01;
    /// Method: username/password.
    pub const METHOD_USERPASS: u8    = 0x02;
    /// Method selection: no acceptable method.
    pub const METHOD_NONE: u8        = 0xff;

    /// CMD: CONNECT.
    pub const CMD_CONNECT: u8        = 0x01;
    /// CMD: BIND.
    pub const CMD_BIND: u8           = 0x02;
    /// CMD: UDP ASSOCIATE.
    pub const CMD_UDP_ASSOCIATE: u8  = 0x03;

    /// ATYP: IPv4 address.
    pub const ATYP_IPV4: u8          = 0x01;
    /// ATYP: domain name.
    pub const ATYP_DOMAIN: u8        = 0x03;
    /// ATYP: IPv6 address.
    pub const ATYP_IPV6: u8          = 0x04;

    /// REP: succeeded.
    pub const REP_SUCCEEDED: u8              = 0x00;
    /// REP: general SOCKS server failure.
    pub const REP_GENERAL_FAILURE: u8        = 0x01;
    /// REP: connection not allowed by ruleset.
    pub const REP_NOT_ALLOWED: u8            = 0x02;
    /// REP: network unreachable.
    pub const REP_NETWORK_UNREACHABLE: u8    = 0x03;
    /// REP: host unreachable.
    pub const REP_HOST_UNREACHABLE: u8       = 0x04;
    /// REP: connection refused.
    pub const REP_CONNECTION_REFUSED: u8     = 0x05;
    /// REP: TTL expired.
    pub const REP_TTL_EXPIRED: u8            = 0x06;
    /// REP: command not supported.
    pub const REP_COMMAND_NOT_SUPPORTED: u8  = 0x07;
    /// REP: address type not supported.
    pub const REP_ATYP_NOT_SUPPORTED: u8     = 0x08;
}
pub use consts::*;

macro_rules! byte_enum {
    ($(#[$m:meta])* $name:ident, $kind:literal { $($(#[$vm:meta])* $v:ident = $c:path),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $v = $c),* }

        impl TryFrom<u8> for $name {
            type Error = UnknownValue;
            fn try_from(b: u8) -> Result<Self, UnknownValue> {
                match b {
                    $($c => Ok(Self::$v),)*
                    value => Err(UnknownValue { kind: $kind, value }),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 { v as u8 }
        }
    };
}

byte_enum!(
    /// CMD of a request.
    Command, "command" {
        /// CONNECT, the only one XEP-0065 TCP mode uses.
        Connect = CMD_CONNECT,
        /// BIND (never supported here).
        Bind = CMD_BIND,
        /// UDP ASSOCIATE (XEP-0065 UDP mode, not supported here).
        UdpAssociate = CMD_UDP_ASSOCIATE,
    }
);

byte_enum!(
    /// ATYP of a request or reply.
    AddressType, "address type" {
        /// IPv4, 4 bytes.
        Ipv4 = ATYP_IPV4,
        /// Domain name, one length byte then the name; XEP-0065 always uses this.
        Domain = ATYP_DOMAIN,
        /// IPv6, 16 bytes.
        Ipv6 = ATYP_IPV6,
    }
);

byte_enum!(
    /// REP of a reply (RFC 1928 §6).
    ReplyCode, "reply code" {
        /// Succeeded.
        Succeeded = REP_SUCCEEDED,
        /// General SOCKS server failure.
        GeneralFailure = REP_GENERAL_FAILURE,
        /// Connection not allowed by ruleset.
        NotAllowed = REP_NOT_ALLOWED,
        /// Network unreachable.
        NetworkUnreachable = REP_NETWORK_UNREACHABLE,
        /// Host unreachable: used here for a DST.ADDR no session waits for.
        HostUnreachable = REP_HOST_UNREACHABLE,
        /// Connection refused.
        ConnectionRefused = REP_CONNECTION_REFUSED,
        /// TTL expired.
        TtlExpired = REP_TTL_EXPIRED,
        /// Command not supported.
        CommandNotSupported = REP_COMMAND_NOT_SUPPORTED,
        /// Address type not supported.
        AddressTypeNotSupported = REP_ATYP_NOT_SUPPORTED,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_code_round_trips_and_nine_is_unknown() {
        for b in 0u8..=8 {
            assert_eq!(u8::from(ReplyCode::try_from(b).unwrap()), b);
        }
        assert_eq!(
            ReplyCode::try_from(9).unwrap_err(),
            UnknownValue {
                kind: "reply code",
                value: 9
            }
        );
    }

    #[test]
    fn unknown_address_type_is_an_error() {
        assert!(AddressType::try_from(2).is_err());
        assert_eq!(AddressType::try_from(3).unwrap(), AddressType::Domain);
    }
}
