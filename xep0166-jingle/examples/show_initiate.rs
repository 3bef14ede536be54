//! Prints the session-initiate an `Endpoint` sends (for a look at the wire form).
use std::time::Instant;
use xep0166_jingle::{Config, Content, Creator, Endpoint, Sid};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ep = Endpoint::new("romeo@montague.example/orchard".parse()?, Config::default());
    let c = Content::new(Creator::Initiator, "a-file-offer")
        .with_description("<description xmlns='urn:example:app'/>".parse::<minidom::Element>()?)
        .with_transport("<transport xmlns='urn:example:t'/>".parse::<minidom::Element>()?);
    ep.initiate(
        Instant::now(),
        "juliet@capulet.example/balcony".parse()?,
        Sid::new("851ba2")?,
        vec![c],
    )?;
    let iq = ep.poll_transmit().ok_or("nothing sent")?;
    println!("{}", String::from(&minidom::Element::from(iq)));
    Ok(())
}
