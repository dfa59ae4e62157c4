//! Identifiers of the exchange: X-Road member ids, signing key names and personal PINs.
//!
//! A member id has the X-Road form `INSTANCE/CLASS/MEMBER/SUBSYSTEM`; a signing key is named
//! `MEMBER-ID#KEYNAME`. The PIN is personal data: its `Debug` and `Display` never show it; it is
//! serialized as its digits, for the records that must hold it (a view, an access record) and
//! the answers that name the person to an authorised reader.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

/// Why an identifier was refused. Texts never contain the refused value: it may be personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A member id without its four parts.
    #[error("a member id has four parts INSTANCE/CLASS/MEMBER/SUBSYSTEM")]
    MemberParts,
    /// A part of a member id that is empty, too long or has a character outside the set.
    #[error("member id part {0} is empty, longer than 64 characters or has a character outside A-Za-z0-9'(),-.=?")]
    MemberPart(usize),
    /// A key name not of the form MEMBER-ID#KEYNAME.
    #[error("a key name has the form MEMBER-ID#KEYNAME")]
    KeyNameForm,
    /// A PIN not of its form.
    #[error("a PIN has 14 digits: sex digit 1 or 2, birth date DDMMYYYY, 5 digits")]
    PinForm,
    /// A PIN whose birth date does not exist.
    #[error("the birth date inside the PIN does not exist")]
    PinDate,
}

/// One part of a member id: X.680's printable characters but `+`, which a member id cannot
/// hold because it names the member's log and witness in C2SP signed notes, whose key names
/// exclude it (c2sp.org/signed-note).
fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 64
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "'(),-.=?".contains(c))
}

/// An X-Road member (subsystem) id, e.g. `central-server/GOV/70000001/migration`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemberId(String);

impl MemberId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MemberId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() != 4 {
            return Err(IdError::MemberParts);
        }
        if let Some(i) = parts.iter().position(|p| !valid_part(p)) {
            return Err(IdError::MemberPart(i + 1));
        }
        Ok(MemberId(s.to_string()))
    }
}

impl TryFrom<String> for MemberId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<MemberId> for String {
    fn from(m: MemberId) -> String {
        m.0
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({})", self.0)
    }
}

/// A signing key's name, `MEMBER-ID#KEYNAME`: the JWS `kid`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyName {
    member: MemberId,
    key: String,
}

impl KeyName {
    /// The key named `key` of `member`.
    pub fn new(member: MemberId, key: &str) -> Result<Self, IdError> {
        if !valid_part(key) {
            return Err(IdError::KeyNameForm);
        }
        Ok(KeyName {
            member,
            key: key.to_string(),
        })
    }
    pub(crate) fn member(&self) -> &MemberId {
        &self.member
    }
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

impl FromStr for KeyName {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let (member, key) = s.split_once('#').ok_or(IdError::KeyNameForm)?;
        KeyName::new(member.parse()?, key)
    }
}

impl TryFrom<String> for KeyName {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<KeyName> for String {
    fn from(k: KeyName) -> String {
        k.to_string()
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.member, self.key)
    }
}

/// Sex as encoded in the PIN's first digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Sex {
    #[serde(rename = "F")]
    Female,
    #[serde(rename = "M")]
    Male,
}

impl Sex {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Sex::Female => "F",
            Sex::Male => "M",
        }
    }
}

/// A personal identification number. Personal data: formatting it shows `Pin(…)` only;
/// use [`Pin::expose`] where the number itself is needed (storage keys, the person's own view).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pin {
    digits: String,
    sex: Sex,
    birth_date: Date,
}

impl Pin {
    pub(crate) fn expose(&self) -> &str {
        &self.digits
    }
    pub(crate) fn sex(&self) -> Sex {
        self.sex
    }
    pub(crate) fn birth_date(&self) -> Date {
        self.birth_date
    }
}

impl FromStr for Pin {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
            return Err(IdError::PinForm);
        }
        let sex = match b[0] {
            b'1' => Sex::Female,
            b'2' => Sex::Male,
            _ => return Err(IdError::PinForm),
        };
        let num = |r: std::ops::Range<usize>| -> u32 {
            b[r].iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
        };
        let (day, month, year) = (num(1..3), num(3..5), num(5..9));
        if !(1900..=2099).contains(&year) {
            return Err(IdError::PinForm);
        }
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or(IdError::PinForm)?;
        let day = u8::try_from(day).map_err(|_| IdError::PinForm)?;
        let year = i32::try_from(year).map_err(|_| IdError::PinForm)?;
        let birth_date =
            Date::from_calendar_date(year, month, day).map_err(|_| IdError::PinDate)?;
        Ok(Pin {
            digits: s.to_string(),
            sex,
            birth_date,
        })
    }
}

/// The digits, for stored records and answers to authorised readers (never a log line: tracing
/// takes `Display` or `Debug`).
impl Serialize for Pin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.digits)
    }
}

/// Read back as written, checked as a parsed PIN is (the error never shows the value).
impl<'de> Deserialize<'de> for Pin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let digits = String::deserialize(deserializer)?;
        digits.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(…)")
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_follow_x_road_form() {
        let m: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        assert_eq!(m.as_str(), "central-server/GOV/70000001/migration");
        assert_eq!(
            "central-server/GOV/70000001".parse::<MemberId>(),
            Err(IdError::MemberParts)
        );
        assert_eq!(
            "central-server/GOV/7000 0001/migration".parse::<MemberId>(),
            Err(IdError::MemberPart(3))
        );
        assert_eq!(
            "central-server//70000001/migration".parse::<MemberId>(),
            Err(IdError::MemberPart(2))
        );
        // A member id names its log in C2SP signed notes, whose key names cannot hold `+`.
        assert_eq!(
            "central-server/GOV/7000+0001/migration".parse::<MemberId>(),
            Err(IdError::MemberPart(3))
        );
    }

    #[test]
    fn key_names_join_member_and_key() {
        let k: KeyName = "central-server/GOV/70000001/migration#sign-2026"
            .parse()
            .unwrap();
        assert_eq!(k.key(), "sign-2026");
        assert_eq!(k.member().as_str(), "central-server/GOV/70000001/migration");
        assert!("central-server/GOV/70000001/migration"
            .parse::<KeyName>()
            .is_err());
        assert!("a/b/c/d#".parse::<KeyName>().is_err());
    }

    #[test]
    fn pins_carry_sex_and_a_real_birth_date() {
        let p: Pin = "21503199012345".parse().unwrap();
        assert_eq!(p.sex(), Sex::Male);
        assert_eq!(p.birth_date().to_string(), "1990-03-15");
        assert_eq!("12902199212345".parse::<Pin>().unwrap().sex(), Sex::Female);
        // 29 February only in leap years, 31 April never.
        assert_eq!("12902199112345".parse::<Pin>(), Err(IdError::PinDate));
        assert_eq!("13104199012345".parse::<Pin>(), Err(IdError::PinDate));
        assert_eq!("31503199012345".parse::<Pin>(), Err(IdError::PinForm));
        assert_eq!("2150319901234".parse::<Pin>(), Err(IdError::PinForm));
        assert_eq!("2150318901234x".parse::<Pin>(), Err(IdError::PinForm));
        assert_eq!("21503180012345".parse::<Pin>(), Err(IdError::PinForm));
    }

    #[test]
    fn pins_never_print() {
        let p: Pin = "21503199012345".parse().unwrap();
        assert_eq!(format!("{p} {p:?}"), "Pin(…) Pin(…)");
    }

    #[test]
    fn pins_are_stored_as_their_digits_and_checked_when_read() {
        let p: Pin = "21503199012345".parse().unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), r#""21503199012345""#);
        assert_eq!(
            serde_json::from_str::<Pin>(r#""21503199012345""#).unwrap(),
            p
        );
        let refused = serde_json::from_str::<Pin>(r#""13104199012345""#).unwrap_err();
        assert!(!refused.to_string().contains("13104199012345"), "{refused}");
    }
}
