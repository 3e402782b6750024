//! The AWS Query protocol's response side: XML in the API's namespace,
//! `<ActionResponse><ActionResult>...</ActionResult><ResponseMetadata>`,
//! lists as `<member>` elements, errors as `ErrorResponse`. Written with
//! quick-xml, which escapes every text.

use std::fmt::Display;

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::error::ApiError;

/// The ELBv2 API's XML namespace.
pub const NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

/// An XML body being written.
pub struct Xml {
    writer: Writer<Vec<u8>>,
}

impl Xml {
    fn new() -> Xml {
        Xml { writer: Writer::new(Vec::with_capacity(1024)) }
    }

    // Writing into a Vec cannot fail: quick-xml's errors come from the sink.
    fn event(&mut self, event: Event<'_>) {
        let _ = self.writer.write_event(event);
    }

    fn open(&mut self, name: &str) {
        self.event(Event::Start(BytesStart::new(name)));
    }

    fn close(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    /// `<name>text</name>`.
    pub fn el(&mut self, name: &str, text: impl Display) {
        self.open(name);
        self.event(Event::Text(BytesText::new(&text.to_string())));
        self.close(name);
    }

    /// `<name>text</name>` when there is a value.
    pub fn opt(&mut self, name: &str, text: Option<impl Display>) {
        if let Some(text) = text {
            self.el(name, text);
        }
    }

    /// `<name>...</name>` around what `body` writes.
    pub fn node(&mut self, name: &str, body: impl FnOnce(&mut Xml)) {
        self.open(name);
        body(self);
        self.close(name);
    }

    /// `<name><member>...</member>...</name>`, one member per item.
    pub fn members<T>(&mut self, name: &str, items: impl IntoIterator<Item = T>, mut member: impl FnMut(&mut Xml, T)) {
        self.open(name);
        for item in items {
            self.open("member");
            member(self, item);
            self.close("member");
        }
        self.close(name);
    }

    /// `<name><member>text</member>...</name>`.
    pub fn texts<T: Display>(&mut self, name: &str, items: impl IntoIterator<Item = T>) {
        self.members(name, items, |x, text| {
            x.event(Event::Text(BytesText::new(&text.to_string())));
        });
    }

    /// The whole response of `action`: its result as `body` writes it, and
    /// the request id.
    pub fn response(action: &str, request_id: &str, body: impl FnOnce(&mut Xml)) -> String {
        let mut x = Xml::new();
        let response = format!("{action}Response");
        x.event(Event::Start(BytesStart::new(response.as_str()).with_attributes([("xmlns", NAMESPACE)])));
        x.node(&format!("{action}Result"), body);
        x.node("ResponseMetadata", |x| x.el("RequestId", request_id));
        x.close(&response);
        x.finish()
    }

    /// An `ErrorResponse`.
    pub fn error(err: &ApiError, request_id: &str) -> String {
        let mut x = Xml::new();
        x.event(Event::Start(BytesStart::new("ErrorResponse").with_attributes([("xmlns", NAMESPACE)])));
        x.node("Error", |x| {
            x.el("Type", err.fault());
            x.el("Code", &err.code);
            x.el("Message", &err.message);
        });
        x.el("RequestId", request_id);
        x.close("ErrorResponse");
        x.finish()
    }

    fn finish(self) -> String {
        // Only text from `&str` and `Display` went in: the bytes are UTF-8.
        String::from_utf8(self.writer.into_inner()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_nest_results_members_and_escape_text() {
        let body = Xml::response("DescribeTags", "req-1", |x| {
            x.members("TagDescriptions", ["a<b", "c&d"], |x, name| {
                x.el("ResourceArn", name);
                x.texts("Values", [1, 2]);
            });
            x.opt("NextMarker", None::<&str>);
        });
        assert_eq!(
            body,
            format!(
                "<DescribeTagsResponse xmlns=\"{NAMESPACE}\"><DescribeTagsResult><TagDescriptions><member>\
                 <ResourceArn>a&lt;b</ResourceArn><Values><member>1</member><member>2</member></Values></member>\
                 <member><ResourceArn>c&amp;d</ResourceArn><Values><member>1</member><member>2</member></Values>\
                 </member></TagDescriptions></DescribeTagsResult><ResponseMetadata><RequestId>req-1</RequestId>\
                 </ResponseMetadata></DescribeTagsResponse>"
            )
        );
        let err = Xml::error(&ApiError::new("LoadBalancerNotFound", "no \"x\"", 400), "req-2");
        assert!(err.contains("<Type>Sender</Type><Code>LoadBalancerNotFound</Code><Message>no &quot;x&quot;</Message>"));
    }
}
