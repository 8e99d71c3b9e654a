//! Kaifa classification (SPEC §4.3): the IEC 61968-9 EndDeviceEventType code first, then severity.
//!
//! A code is `type.domain.subdomain.event`, e.g. `3.26.0.85` = electric meter, power, -, power off.

/// What a head-end message says about its meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KaifaMeaning {
    PowerOff,
    PowerRestored,
    /// The meter spoke: communication is online, power unchanged.
    CommunicationOnly,
    /// Power-quality events (sags, swells): stored, no state change.
    PowerQuality,
}

/// The meaning and what decided it, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KaifaClassification {
    pub meaning: KaifaMeaning,
    pub basis: String,
}

const DOMAIN_POWER: u32 = 26;
const COMMUNICATION_DOMAINS: [u32; 3] = [1, 19, 23];
const POWER_OFF_EVENTS: [u32; 3] = [85, 47, 185];
const POWER_ON_EVENTS: [u32; 2] = [216, 49];

fn is_power_quality_subdomain(subdomain: u32) -> bool {
    subdomain == 38 || (131..=133).contains(&subdomain)
}

/// `Some` when the code alone decides; `None` for absent, malformed or unmapped codes.
fn by_code(code: &str) -> Option<KaifaMeaning> {
    let parts: Vec<u32> = code
        .trim()
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [_, domain, subdomain, event] = parts[..] else {
        return None;
    };
    if domain == DOMAIN_POWER {
        if is_power_quality_subdomain(subdomain) {
            Some(KaifaMeaning::PowerQuality)
        } else if POWER_OFF_EVENTS.contains(&event) {
            Some(KaifaMeaning::PowerOff)
        } else if POWER_ON_EVENTS.contains(&event) {
            Some(KaifaMeaning::PowerRestored)
        } else {
            None
        }
    } else if COMMUNICATION_DOMAINS.contains(&domain) {
        Some(KaifaMeaning::CommunicationOnly)
    } else {
        None
    }
}

pub fn classify(code: Option<&str>, severity: Option<&str>) -> KaifaClassification {
    if let Some(code) = code {
        if let Some(meaning) = by_code(code) {
            return KaifaClassification {
                meaning,
                basis: format!("event_type {code}"),
            };
        }
    }
    let severity_text = severity.unwrap_or("").trim().to_ascii_lowercase();
    let meaning = match severity_text.as_str() {
        "critical" | "high" => KaifaMeaning::PowerOff,
        _ => KaifaMeaning::CommunicationOnly,
    };
    let basis = if severity_text.is_empty() {
        "no code or severity".to_string()
    } else {
        format!("severity {severity_text}")
    };
    KaifaClassification { meaning, basis }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KaifaMeaning::*;

    fn meaning(code: Option<&str>, severity: Option<&str>) -> KaifaMeaning {
        classify(code, severity).meaning
    }

    #[test]
    fn code_decides_before_severity() {
        assert_eq!(meaning(Some("3.26.0.85"), Some("low")), PowerOff);
        assert_eq!(meaning(Some("3.26.0.47"), None), PowerOff);
        assert_eq!(meaning(Some("3.26.0.185"), None), PowerOff);
        assert_eq!(meaning(Some("3.26.0.216"), Some("critical")), PowerRestored);
        assert_eq!(meaning(Some("3.26.0.49"), None), PowerRestored);
        assert_eq!(
            meaning(Some("3.1.0.85"), Some("critical")),
            CommunicationOnly
        );
        assert_eq!(meaning(Some("3.19.4.1"), None), CommunicationOnly);
        assert_eq!(meaning(Some("3.23.0.1"), None), CommunicationOnly);
        assert_eq!(meaning(Some("3.26.38.85"), Some("critical")), PowerQuality);
        assert_eq!(meaning(Some("3.26.132.0"), None), PowerQuality);
    }

    #[test]
    fn severity_decides_when_the_code_does_not() {
        assert_eq!(meaning(None, Some("critical")), PowerOff);
        assert_eq!(meaning(None, Some("HIGH")), PowerOff);
        assert_eq!(meaning(Some("3.26.0.999"), Some("high")), PowerOff);
        assert_eq!(meaning(Some("garbage"), Some("Critical")), PowerOff);
        assert_eq!(meaning(Some("3.26.0"), Some("low")), CommunicationOnly);
        assert_eq!(meaning(None, Some("medium")), CommunicationOnly);
        assert_eq!(meaning(None, None), CommunicationOnly);
    }

    #[test]
    fn basis_explains_the_decision() {
        assert_eq!(
            classify(Some("3.26.0.85"), Some("low")).basis,
            "event_type 3.26.0.85"
        );
        assert_eq!(classify(None, Some("critical")).basis, "severity critical");
    }
}
