use base64::Engine as _;

use super::*;

/// The user and password a `Basic …` value carries.
fn decoded(header: &str) -> String {
    let token = header.strip_prefix("Basic ").expect("a Basic value");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

#[test]
fn http_user_info_is_decoded_for_basic_auth_and_hidden_when_printed() {
    // (URL, user:password sent, the password as typed, host)
    for (url, creds, typed, host) in [
        (
            "https://ops:p@ss@reg.example:8081/",
            "ops:p@ss",
            "p@ss",
            "reg.example",
        ),
        ("http://ops:a:b@h/", "ops:a:b", "a:b", "h"),
        ("http://ops:p%40ss@h/", "ops:p@ss", "p%40ss", "h"),
        ("http://ops:p%3Ass@h/", "ops:p:ss", "p%3Ass", "h"),
        ("http://ops:p%2Fss@h/x", "ops:p/ss", "p%2Fss", "h"),
        ("http://o%40ps:pw@[::1]:9/", "o@ps:pw", "pw", "[::1]"),
    ] {
        let parsed = parse_http(url).expect(url);
        let auth = basic_auth(&parsed).expect(url);
        assert_eq!(decoded(&auth), creds, "{url}");
        assert_eq!(parsed.host_str(), Some(host), "{url}");
        let shown = redact(url);
        assert!(!shown.contains(typed), "{url} shown as {shown}");
        assert!(shown.contains(":***@"), "{url} shown as {shown}");
        let bare = without_credentials(&parsed).to_string();
        assert!(!bare.contains('@'), "{bare}");
    }
}

#[test]
fn a_user_without_a_password_and_no_user_info() {
    let user = parse_http("http://ops@h:8081/").expect("url");
    assert_eq!(
        basic_auth(&user).map(|a| decoded(&a)).as_deref(),
        Some("ops:")
    );
    assert_eq!(redact("http://ops@h:8081/"), "http://ops@h:8081/");
    let none = parse_http("http://h:8081/x?y=1").expect("url");
    assert_eq!(basic_auth(&none), None);
    assert_eq!(none.port(), Some(8081));
    assert_eq!(redact("http://h:8081/x?y=1"), "http://h:8081/x?y=1");
}

#[test]
fn a_url_the_url_crate_refuses_still_prints_without_its_password() {
    // An unencoded '/' or a bad port: the error quotes the URL, the password hidden.
    for (url, typed) in [
        ("http://ops:p/w@h/", "p/w"),
        ("https://ops:s3cret@h:99999/", "s3cret"),
    ] {
        let e = parse_http(url).expect_err(url);
        assert!(!e.contains(typed), "{e}");
        assert!(e.contains("ops:***@h"), "{e}");
    }
    for (url, why) in [
        ("ftp://h/", "'ftp://h/': not an http:// or https:// URL"),
        ("http:///x", "'http:///x': no host"),
        ("reg:8081", "'reg:8081': not an http:// or https:// URL"),
    ] {
        assert_eq!(parse_http(url).expect_err(url), why);
    }
}

#[test]
fn a_password_is_added_encoded_to_a_user_without_one() {
    let with = http_with_password("http://ops@h:8081", "p@ss:w/rd%").expect("user");
    let parsed = parse_http(&with).expect("url");
    assert_eq!(
        basic_auth(&parsed).map(|a| decoded(&a)).as_deref(),
        Some("ops:p@ss:w/rd%")
    );
    assert_eq!(http_with_password("http://ops:x@h", "y"), None);
    assert_eq!(http_with_password("http://h", "y"), None);
}

#[test]
fn connection_strings_split_at_the_last_at_sign_before_the_options() {
    let uri = "mongodb://ops:p@ss@db-1:27017,db-2:27017/admin?replicaSet=rs";
    assert_eq!(conn_hosts(uri), "db-1:27017,db-2:27017");
    assert_eq!(
        redact_conn(uri),
        "mongodb://ops:***@db-1:27017,db-2:27017/admin?replicaSet=rs"
    );
    assert_eq!(redact(uri), redact_conn(uri));
    // An unencoded '/' in the password (the driver refuses it, the error prints it).
    let slash = "mongodb://ops:p/w@db:27017/?authSource=admin";
    assert_eq!(conn_hosts(slash), "db:27017");
    assert_eq!(
        redact_conn(slash),
        "mongodb://ops:***@db:27017/?authSource=admin"
    );
    // An '@' among the options is not user info.
    let option = "mongodb://db:27017/?appName=a@b";
    assert_eq!(conn_hosts(option), "db:27017");
    assert_eq!(redact_conn(option), option);
    assert_eq!(conn_with_password(option, "x"), None);
    assert_eq!(
        conn_hosts("mongodb+srv://ops@cluster0.example.net"),
        "cluster0.example.net"
    );
    assert_eq!(redact_conn("mongodb://ops@db"), "mongodb://ops@db");
    assert_eq!(
        conn_with_password("mongodb://ops@db-1,db-2/?authSource=admin", "p@ss word").as_deref(),
        Some("mongodb://ops:p%40ss%20word@db-1,db-2/?authSource=admin")
    );
}
