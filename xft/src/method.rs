//! The `--method` names, mapped onto the facade's types: a [`Method`] preference plus, where
//! the name says so, an [`S5bRoute`] or an IBB stanza kind.

use ft_facade::{Config, IbbOptions, Method, S5bRoute, SendOptions, StanzaKind};

/// One `--method` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MethodSpec {
    /// What the user typed (for reports).
    pub(crate) name: &'static str,
    methods: &'static [Method],
    route: Option<S5bRoute>,
    stanza: Option<StanzaKind>,
}

/// Every name `--method` accepts.
pub(crate) const NAMES: &[&str] = &[
    "auto",
    "s5b",
    "s5b-direct",
    "s5b-proxy",
    "ibb",
    "ibb-iq",
    "ibb-message",
];

impl MethodSpec {
    /// Parses a `--method` value.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let (name, methods, route, stanza): (_, &'static [Method], _, _) = match s {
            "auto" => ("auto", &[Method::S5b, Method::Ibb], None, None),
            "s5b" => ("s5b", &[Method::S5b], None, None),
            "s5b-direct" => ("s5b-direct", &[Method::S5b], Some(S5bRoute::Direct), None),
            "s5b-proxy" => ("s5b-proxy", &[Method::S5b], Some(S5bRoute::Proxy), None),
            "ibb" => ("ibb", &[Method::Ibb], None, None),
            "ibb-iq" => ("ibb-iq", &[Method::Ibb], None, Some(StanzaKind::Iq)),
            "ibb-message" => (
                "ibb-message",
                &[Method::Ibb],
                None,
                Some(StanzaKind::Message),
            ),
            other => {
                return Err(format!(
                    "unknown method {other:?} (expected one of {})",
                    NAMES.join(", ")
                ));
            }
        };
        Ok(Self {
            name,
            methods,
            route,
            stanza,
        })
    }

    /// Makes this the configuration's default.
    pub(crate) fn apply_to_config(&self, c: &mut Config) {
        c.methods(self.methods);
        if let Some(r) = self.route {
            c.s5b_route(r);
        }
        if let Some(k) = self.stanza {
            c.ibb_stanza(k);
        }
    }

    /// Makes this one transfer's choice (the IBB block size stays `config`'s).
    pub(crate) fn send_options(&self, config: &Config) -> SendOptions {
        let mut o = SendOptions::default().with_methods(self.methods);
        if let Some(r) = self.route {
            o = o.with_s5b_route(r);
        }
        if let Some(k) = self.stanza {
            o = o.with_ibb(IbbOptions {
                stanza: k,
                ..config.ibb_options
            });
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cli_name_maps_onto_a_method_and_its_options() {
        for name in NAMES {
            assert_eq!(MethodSpec::parse(name).unwrap().name, *name);
        }
        let mut c = Config::default();
        MethodSpec::parse("ibb-message")
            .unwrap()
            .apply_to_config(&mut c);
        assert_eq!(c.methods, [Method::Ibb]);
        assert_eq!(c.ibb_options.stanza, StanzaKind::Message);
        let mut c = Config::default();
        MethodSpec::parse("s5b-proxy")
            .unwrap()
            .apply_to_config(&mut c);
        assert_eq!(c.methods, [Method::S5b]);
        assert_eq!(c.s5b_route, S5bRoute::Proxy);
        let o = MethodSpec::parse("s5b-direct")
            .unwrap()
            .send_options(&Config::default());
        assert_eq!(o.s5b_route, Some(S5bRoute::Direct));
        assert!(MethodSpec::parse("jingle").is_err());
    }
}
