//! The `{language}` of captions and chapters (contract §10): a BCP 47 language tag. The shape is
//! the contract's `[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*`, matched case-insensitively and kept in its
//! lowercase form; beyond the shape, the primary subtag must name a language, as BCP 47 spells
//! it: its ISO 639 two-letter code when it has one, otherwise its three-letter code (the
//! table, `languages.tsv`, is written by `scripts/languages.py` from Debian's iso-codes).
//! So `en`, `fr-ca`, `zh-yue-hk` and `yue` are languages; `xx`, `eng` (English is `en`) and
//! `en_US` are not.

use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("languages.tsv");
/// Longer tags are legal BCP 47 but nothing a caption needs; this bounds keys and URLs.
pub const MAX_TAG_CHARS: usize = 35;

/// A valid language tag, lowercase.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language(String);

/// Why a tag was refused, worded for the `detail` of the problem body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LanguageError {
    /// Not `[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*`.
    Shape,
    /// Well formed, but the primary subtag names no language.
    Unknown(String),
    /// A three-letter code of a language BCP 47 writes with two letters.
    Longer { given: String, use_instead: String },
}

impl std::fmt::Display for LanguageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LanguageError::Shape => f.write_str(
                "The \"language\" attribute must be a BCP 47 language tag: letters and dashes, such as \"en\", \"fr-ca\" or \"zh-yue-hk\".",
            ),
            LanguageError::Unknown(p) => write!(f, "The \"language\" attribute is not valid: \"{p}\" is not a known language."),
            LanguageError::Longer { given, use_instead } => {
                write!(f, "The \"language\" attribute is not valid: BCP 47 writes \"{given}\" as \"{use_instead}\".")
            }
        }
    }
}

enum Entry {
    Name(&'static str),
    ShorterIs(&'static str),
}

fn table() -> &'static HashMap<&'static str, Entry> {
    static T: OnceLock<HashMap<&'static str, Entry>> = OnceLock::new();
    T.get_or_init(|| {
        TABLE
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(code, v)| match v.strip_prefix('>') {
                Some(short) => (code, Entry::ShorterIs(short)),
                None => (code, Entry::Name(v)),
            })
            .collect()
    })
}

/// ISO 639-2 reserves `qaa`–`qtz` for local use, and BCP 47 keeps them.
fn private_use(primary: &str) -> bool {
    let b = primary.as_bytes();
    b.len() == 3 && b[0] == b'q' && (b'a'..=b't').contains(&b[1]) && b[2].is_ascii_lowercase()
}

impl Language {
    pub fn parse(raw: &str) -> Result<Language, LanguageError> {
        if raw.is_empty() || raw.len() > MAX_TAG_CHARS || !raw.is_ascii() {
            return Err(LanguageError::Shape);
        }
        let tag = raw.to_ascii_lowercase();
        let mut subtags = tag.split('-');
        let primary = subtags.next().unwrap_or("");
        if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(LanguageError::Shape);
        }
        if !subtags.all(|s| (2..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return Err(LanguageError::Shape);
        }
        match table().get(primary) {
            Some(Entry::Name(_)) => Ok(Language(tag)),
            _ if private_use(primary) => Ok(Language(tag)),
            Some(Entry::ShorterIs(s)) => Err(LanguageError::Longer { given: primary.into(), use_instead: (*s).into() }),
            None => Err(LanguageError::Unknown(primary.into())),
        }
    }

    /// A tag read back from storage, where only parsed tags are written.
    pub fn from_trusted(s: String) -> Language {
        Language(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A label for menus: the language's English name, with the whole tag when it says more
    /// than the language (`French (fr-ca)`).
    pub fn label(&self) -> String {
        let primary = self.0.split('-').next().unwrap_or(&self.0);
        match table().get(primary) {
            Some(Entry::Name(n)) if primary == self.0 => (*n).to_string(),
            Some(Entry::Name(n)) => format!("{n} ({})", self.0),
            _ => self.0.clone(),
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_bcp47_languages_kept_lowercase() {
        for (raw, canon) in [("en", "en"), ("EN", "en"), ("fr-CA", "fr-ca"), ("zh-yue-HK", "zh-yue-hk"), ("yue", "yue")]
        {
            assert_eq!(Language::parse(raw).unwrap().as_str(), canon, "{raw}");
        }
        assert!(Language::parse("qaa").is_ok() && Language::parse("de-1996").is_ok());
        assert_eq!(Language::parse("en").unwrap().label(), "English");
        assert_eq!(Language::parse("fr-ca").unwrap().label(), "French (fr-ca)");
    }

    #[test]
    fn malformed_and_unknown_tags_are_refused() {
        for bad in
            ["", "e", "english", "en_US", "en-", "-en", "en--us", "en-a", "en-abcdefghi", "fr ca", "é", "en/../x"]
        {
            assert_eq!(Language::parse(bad), Err(LanguageError::Shape), "{bad}");
        }
        assert_eq!(Language::parse("xx"), Err(LanguageError::Unknown("xx".into())));
        assert_eq!(Language::parse("zzz-us"), Err(LanguageError::Unknown("zzz".into())));
        assert_eq!(
            Language::parse("eng"),
            Err(LanguageError::Longer { given: "eng".into(), use_instead: "en".into() })
        );
        assert!(Language::parse("fre").is_err() && Language::parse(&"a".repeat(40)).is_err());
    }
}
