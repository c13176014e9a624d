//! What a session records about its viewer beyond what the player says: the client, OS and
//! device from the User-Agent (woothee: a self-contained parser, no rules file to ship or keep
//! up to date beside the binary), the referrer's medium, source and search term, and the location
//! from the client address through a MaxMind-format database when the operator configures one.
//! Whatever is not known is spelled as the 2023 schemas spell it, `unknown`.

use std::net::IpAddr;
use std::path::Path;

use vidi_core::analytics::{Agent, Referrer, UNKNOWN};

/// The longest User-Agent parsed; longer ones are cut (real ones are a few hundred bytes).
const MAX_UA: usize = 512;
/// The longest referrer URL kept.
pub const MAX_REFERRER: usize = 2048;

fn known(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("unknown") || s.eq_ignore_ascii_case("UNKNOWN") {
        UNKNOWN.to_string()
    } else {
        s.chars().take(128).collect()
    }
}

/// The longest viewer id a player may send (the page's is 22 characters of base64url).
pub const MAX_VIEWER_ID: usize = 64;

/// Whether a player's viewer id is one: 8 to [`MAX_VIEWER_ID`] letters, digits, `-` or `_`
/// (what a random id looks like; anything else is not stored).
pub fn valid_viewer_id(id: &str) -> bool {
    (8..=MAX_VIEWER_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Who watched, for unique viewers: the player's own viewer id (`v:…`), kept in the browser's
/// storage across visits; without one (storage refused, another player), a hash of the
/// workspace, the client address, the User-Agent and the UTC day (`h:` and 32 hex digits), so
/// the same browser on the same network counts once a day and neither the address nor anything
/// that follows the viewer from one day, or one workspace, to the next is stored.
pub fn viewer(id: Option<&str>, ws: &str, client: IpAddr, user_agent: Option<&str>, at_ms: i64) -> String {
    use sha2::Digest;
    if let Some(id) = id {
        return format!("v:{id}");
    }
    let mut h = sha2::Sha256::new();
    h.update(ws.as_bytes());
    h.update(b"\0");
    h.update(client.to_string().as_bytes());
    h.update(b"\0");
    h.update(user_agent.unwrap_or("").as_bytes());
    h.update(b"\0");
    h.update(at_ms.div_euclid(86_400_000).to_string().as_bytes());
    format!("h:{}", hex::encode(&h.finalize()[..16]))
}

/// The client, OS and device of a User-Agent.
pub fn agent(ua: Option<&str>) -> Agent {
    let Some(ua) = ua.map(str::trim).filter(|u| !u.is_empty()) else { return Agent::unknown() };
    let ua: String = ua.chars().take(MAX_UA).collect();
    let Some(r) = woothee::parser::Parser::new().parse(&ua) else { return Agent::unknown() };
    // woothee's categories, in the words of the 2023 example (`desktop`).
    let device_type = match r.category {
        "pc" => "desktop",
        "smartphone" | "mobilephone" => "mobile",
        "appliance" => "appliance",
        "crawler" => "bot",
        _ => UNKNOWN,
    };
    let (os_name, os_shortname) = os_names(r.os);
    Agent {
        device_type: device_type.to_string(),
        // A User-Agent does not name the maker of a computer (the example's `Dell`).
        device_vendor: match r.os {
            "iPhone" | "iPad" | "iPod" | "Mac OSX" => "Apple".to_string(),
            _ => UNKNOWN.to_string(),
        },
        device_model: match r.os {
            "iPhone" | "iPad" | "iPod" => r.os.to_string(),
            _ => UNKNOWN.to_string(),
        },
        os_name,
        os_shortname,
        os_version: known(&r.os_version),
        client_name: known(r.name),
        client_version: known(r.version),
        client_type: known(r.browser_type),
    }
}

/// An OS as woothee names it → a display name and a short one (the example's `W10`).
fn os_names(os: &str) -> (String, String) {
    let short = match os {
        "Windows 10" => "W10",
        "Windows 8.1" => "W81",
        "Windows 8" => "W8",
        "Windows 7" => "W7",
        "Mac OSX" => "MAC",
        "iPhone" | "iPad" | "iPod" | "iOS" => "IOS",
        "Android" => "AND",
        "Linux" => "LIN",
        "ChromeOS" => "COS",
        _ if os.starts_with("Windows") => "WIN",
        _ => UNKNOWN,
    };
    let name = match os {
        o if o.starts_with("Windows") => format!("Microsoft {o}"),
        "Mac OSX" => "Mac OS X".to_string(),
        "iPhone" | "iPad" | "iPod" => "iOS".to_string(),
        o => known(o),
    };
    (name, short.to_string())
}

/// Search engines, by a host's registrable name, and the query parameter that holds the terms.
const SEARCH: [(&str, &str); 7] = [
    ("google.", "q"),
    ("bing.com", "q"),
    ("duckduckgo.com", "q"),
    ("search.yahoo.", "p"),
    ("yandex.", "text"),
    ("baidu.com", "wd"),
    ("ecosia.org", "q"),
];

/// The referrer as the player saw it (`document.referrer`: the page that embeds the player, or
/// the page a viewer followed to it). Campaign parameters (`utm_medium`, `utm_source`,
/// `utm_term`) say how the viewer reached it when present; a search engine as referrer is an
/// `organic` visit with its terms; any other page is a `referral`; none at all is `direct`.
pub fn referrer(raw: Option<&str>) -> Referrer {
    let parsed = raw
        .map(str::trim)
        .filter(|r| !r.is_empty() && r.len() <= MAX_REFERRER)
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    let Some(u) = parsed else {
        return Referrer { url: None, medium: "direct".into(), source: UNKNOWN.into(), search_term: UNKNOWN.into() };
    };
    let param =
        |name: &str| u.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.chars().take(255).collect::<String>());
    let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
    let origin = format!("{}://{host}", u.scheme());
    let engine = SEARCH.iter().find(|(h, _)| host.contains(h));
    let (medium, source, term) = match engine {
        Some((_, q)) => ("organic".to_string(), origin, param(q)),
        None => ("referral".to_string(), origin, None),
    };
    Referrer {
        medium: param("utm_medium").unwrap_or(medium),
        source: param("utm_source").unwrap_or(source),
        search_term: param("utm_term").or(term).filter(|t| !t.is_empty()).unwrap_or_else(|| UNKNOWN.into()),
        url: Some(u.to_string()),
    }
}

/// A MaxMind-format (GeoIP2/GeoLite2 City or Country) database, read whole into memory.
pub struct GeoIp(maxminddb::Reader<Vec<u8>>);

impl GeoIp {
    pub fn open(path: &Path) -> anyhow::Result<GeoIp> {
        maxminddb::Reader::open_readfile(path)
            .map(GeoIp)
            .map_err(|e| anyhow::anyhow!("cannot read the GeoIP database {}: {e}", path.display()))
    }

    /// The country and city (English names) of `ip`, when the database knows them.
    pub fn locate(&self, ip: IpAddr) -> (Option<String>, Option<String>) {
        let found = self.0.lookup(ip).ok().and_then(|r| r.decode::<maxminddb::geoip2::City>().ok().flatten());
        match found {
            Some(c) => (c.country.names.english.map(str::to_string), c.city.names.english.map(str::to_string)),
            None => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_user_agents() {
        let firefox = agent(Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:67.0) Gecko/20100101 Firefox/67.0"));
        assert_eq!(
            (firefox.client_name.as_str(), firefox.client_version.as_str(), firefox.client_type.as_str()),
            ("Firefox", "67.0", "browser")
        );
        assert_eq!((firefox.os_name.as_str(), firefox.os_shortname.as_str()), ("Microsoft Windows 10", "W10"));
        assert_eq!(firefox.device_type, "desktop");
        let iphone = agent(Some(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
             Version/17.1 Mobile/15E148 Safari/604.1",
        ));
        assert_eq!((iphone.device_type.as_str(), iphone.device_vendor.as_str()), ("mobile", "Apple"));
        assert_eq!((iphone.os_name.as_str(), iphone.client_name.as_str()), ("iOS", "Safari"));
        let chromium = agent(Some(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        ));
        assert_eq!(chromium.os_name, "Linux");
        assert_eq!(agent(None), Agent::unknown());
        assert_eq!(agent(Some("curl/8.5.0")).device_type, UNKNOWN);
    }

    #[test]
    fn viewers_by_id_or_by_a_daily_hash() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let day = 1_800_000_000_000;
        assert_eq!(viewer(Some("abcdefgh12"), "ws1", ip, None, day), "v:abcdefgh12");
        let h = viewer(None, "ws1", ip, Some("Firefox"), day);
        assert!(h.starts_with("h:") && h.len() == 34, "{h}");
        assert!(!h.contains("203.0.113.7"));
        // The same browser and address, the same day: one viewer.
        assert_eq!(h, viewer(None, "ws1", ip, Some("Firefox"), day + 1000));
        // Another day, another browser, address or workspace: another.
        assert_ne!(h, viewer(None, "ws1", ip, Some("Firefox"), day + 86_400_000));
        assert_ne!(h, viewer(None, "ws1", ip, Some("Chrome"), day));
        assert_ne!(h, viewer(None, "ws1", "203.0.113.8".parse().unwrap(), Some("Firefox"), day));
        assert_ne!(h, viewer(None, "ws2", ip, Some("Firefox"), day));
        assert!(valid_viewer_id("Zx_-09abcdefghijklmnop"));
        for bad in ["short", "with space 123", "é-accented-id", &"x".repeat(65)] {
            assert!(!valid_viewer_id(bad), "{bad}");
        }
    }

    #[test]
    fn referrers() {
        let none = referrer(None);
        assert_eq!((none.url, none.medium.as_str()), (None, "direct"));
        let google = referrer(Some("https://www.google.com/search?q=video+hosting"));
        assert_eq!(
            (google.medium.as_str(), google.source.as_str(), google.search_term.as_str()),
            ("organic", "https://www.google.com", "video hosting")
        );
        let page = referrer(Some("https://blog.example/post?utm_medium=paid&utm_source=newsletter&utm_term=encoding"));
        assert_eq!(
            page.url.as_deref(),
            Some("https://blog.example/post?utm_medium=paid&utm_source=newsletter&utm_term=encoding")
        );
        assert_eq!(
            (page.medium.as_str(), page.source.as_str(), page.search_term.as_str()),
            ("paid", "newsletter", "encoding")
        );
        let plain = referrer(Some("https://blog.example/"));
        assert_eq!((plain.medium.as_str(), plain.search_term.as_str()), ("referral", UNKNOWN));
        assert_eq!(referrer(Some("javascript:alert(1)")).url, None);
        assert_eq!(referrer(Some(&format!("https://a.example/{}", "x".repeat(MAX_REFERRER)))).url, None);
    }
}
