//! URLs with credentials, read one way each. An `http://` or `https://` URL (an HTTP
//! endpoint, a schema registry) is read by the `url` crate: its user and password are
//! percent-decoded for basic auth, and its password is hidden when it is printed. A
//! MongoDB connection string (`mongodb://`, `mongodb+srv://`, several comma-separated
//! hosts) is not one URL, so it is split here the way the driver splits it: the
//! options after the first `?`, the user info before the last `@` ahead of them, then
//! the hosts up to the first `/`.

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use url::Url;

/// What stands for a hidden password.
const HIDDEN: &str = "***";

/// What a password put into a connection string is encoded with: all but the
/// unreserved characters of RFC 3986.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A connection string cut at its user info and hosts, nothing decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnParts<'a> {
    /// `scheme://`, or empty when the string has no scheme.
    pub prefix: &'a str,
    /// The user info (`user` or `user:password`) before the last `@` ahead of the
    /// options, if any.
    pub user_info: Option<&'a str>,
    /// The hosts (`host:port,host:port`).
    pub hosts: &'a str,
    /// The rest: `/db?options`, possibly empty.
    pub rest: &'a str,
}

impl<'a> ConnParts<'a> {
    /// The user info's password (still percent-encoded), if it has one.
    pub fn password(&self) -> Option<&'a str> {
        self.user_info?.split_once(':').map(|(_, p)| p)
    }

    /// The user info's user (still percent-encoded), if there is user info.
    pub fn user(&self) -> Option<&'a str> {
        let info = self.user_info?;
        Some(info.split_once(':').map_or(info, |(u, _)| u))
    }
}

/// Splits a connection string as the MongoDB driver does: the options start at the
/// first `?`; the user info ends at the last `@` before them (a password may hold an
/// `@`, encoded or not); the hosts end at the next `/`.
pub fn split_conn(s: &str) -> ConnParts<'_> {
    let (prefix, after) = match s.find("://") {
        Some(i) => s.split_at(i + 3),
        None => ("", s),
    };
    let options = after.find('?').unwrap_or(after.len());
    let (user_info, tail) = match after[..options].rfind('@') {
        Some(at) => (Some(&after[..at]), &after[at + 1..]),
        None => (None, after),
    };
    let (hosts, rest) = tail.split_at(tail.find(['/', '?']).unwrap_or(tail.len()));
    ConnParts {
        prefix,
        user_info,
        hosts,
        rest,
    }
}

/// A connection string's hosts (`host:port,host:port`), without user info or options.
pub fn conn_hosts(s: &str) -> String {
    split_conn(s).hosts.to_string()
}

/// A connection string with its password (if any) replaced by `***`, safe to print.
pub fn redact_conn(s: &str) -> String {
    let parts = split_conn(s);
    match (parts.user(), parts.password()) {
        (Some(user), Some(_)) => format!(
            "{}{user}:{HIDDEN}@{}{}",
            parts.prefix, parts.hosts, parts.rest
        ),
        _ => s.to_string(),
    }
}

/// A connection string whose user info names a user without a password, with
/// `password` (percent-encoded) given to that user; `None` when there is no such user.
pub fn conn_with_password(s: &str, password: &str) -> Option<String> {
    let parts = split_conn(s);
    let user = parts.user_info.filter(|u| !u.contains(':'))?;
    let encoded = utf8_percent_encode(password, USERINFO);
    Some(format!(
        "{}{user}:{encoded}@{}{}",
        parts.prefix, parts.hosts, parts.rest
    ))
}

/// Reads an `http://` or `https://` URL with a host; the error is one line quoting the
/// URL with its password hidden (`'ftp://h/': not an http:// or https:// URL`).
pub fn parse_http(s: &str) -> Result<Url, String> {
    let bad = |why: &str| format!("'{}': {why}", redact(s));
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(bad("not an http:// or https:// URL"));
    };
    if !["http", "https"].contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(bad("not an http:// or https:// URL"));
    }
    // The url crate reads `http:///x` as host `x`; a URL here names its host.
    if rest.is_empty() || rest.starts_with(['/', '\\', '?', '#']) {
        return Err(bad("no host"));
    }
    let url = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
    if url
        .host_str()
        .is_none_or(|h| h.trim_matches(['[', ']']).is_empty())
    {
        return Err(bad("no host"));
    }
    Ok(url)
}

/// The `Authorization` value (`Basic …`) of `url`'s user info, user and password
/// percent-decoded; `None` when the URL has no user info.
pub fn basic_auth(url: &Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let mut creds: Vec<u8> = percent_decode_str(url.username()).collect();
    creds.push(b':');
    creds.extend(percent_decode_str(url.password().unwrap_or_default()));
    let token = base64::engine::general_purpose::STANDARD.encode(creds);
    Some(format!("Basic {token}"))
}

/// `url` without its user info.
pub fn without_credentials(url: &Url) -> Url {
    let mut bare = url.clone();
    // Both fail only for a URL that cannot have user info, which then has none.
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare
}

/// `url` (an http(s) URL, a MongoDB connection string or anything else) with the
/// password of its user info replaced by `***`, safe to print. An http(s) URL with a
/// password the `url` crate reads is printed as that crate writes it; anything else
/// is cut as [`split_conn`] cuts it (unchanged when it has no password).
pub fn redact(s: &str) -> String {
    match Url::parse(s) {
        Ok(mut url) if ["http", "https"].contains(&url.scheme()) => {
            if url.password().is_none() || url.set_password(Some(HIDDEN)).is_err() {
                return redact_conn(s);
            }
            url.to_string()
        }
        _ => redact_conn(s),
    }
}

/// An http(s) URL whose user info names a user without a password, with `password`
/// given to that user; `None` for any other URL.
pub fn http_with_password(s: &str, password: &str) -> Option<String> {
    let mut url = parse_http(s).ok()?;
    if url.username().is_empty() || url.password().is_some() {
        return None;
    }
    url.set_password(Some(password)).ok()?;
    Some(url.to_string())
}

#[cfg(test)]
#[path = "urls_tests.rs"]
mod tests;
