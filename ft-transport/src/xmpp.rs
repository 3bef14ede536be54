//! tokio-xmpp adapters: a client and a XEP-0114 component as [`StanzaTransport`](crate::StanzaTransport)s.
