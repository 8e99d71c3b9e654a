//! SCADA alarm classification (SPEC §4.1, step 1).
//!
//! The vocabulary is data (`scada_alarm_vocabulary`); this is the rule that applies it. Texts and
//! terms are compared after lower-casing and keeping only letters and digits, and the longest
//! matching term wins, so `De-energized` (outage) is not mistaken for `energized` (restoration).

/// What a SCADA alarm means for the feeder or substation it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmClass {
    Outage,
    Restoration,
    Informational,
}

impl AlarmClass {
    pub fn parse(text: &str) -> Option<AlarmClass> {
        match text {
            "outage" => Some(AlarmClass::Outage),
            "restoration" => Some(AlarmClass::Restoration),
            "informational" => Some(AlarmClass::Informational),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmClass::Outage => "outage",
            AlarmClass::Restoration => "restoration",
            AlarmClass::Informational => "informational",
        }
    }
}

/// The result of classifying one alarm: the class and the vocabulary term that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub class: AlarmClass,
    pub matched_term: Option<String>,
}

fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Classifies an alarm from its `eventType` and `alarmType` against `(term, class)` pairs.
pub fn classify<'a>(
    event_type: &str,
    alarm_type: Option<&str>,
    vocabulary: impl IntoIterator<Item = (&'a str, AlarmClass)>,
) -> Classification {
    let texts = [
        normalize(event_type),
        alarm_type.map(normalize).unwrap_or_default(),
    ];
    let mut best: Option<(usize, AlarmClass, &'a str)> = None;
    for (term, class) in vocabulary {
        let key = normalize(term);
        if key.is_empty() || !texts.iter().any(|t| t.contains(&key)) {
            continue;
        }
        let better = match best {
            None => true,
            Some((len, best_class, _)) => {
                key.len() > len
                    || (key.len() == len
                        && class == AlarmClass::Outage
                        && best_class != AlarmClass::Outage)
            }
        };
        if better {
            best = Some((key.len(), class, term));
        }
    }
    match best {
        Some((_, class, term)) => Classification {
            class,
            matched_term: Some(term.to_string()),
        },
        None => Classification {
            class: AlarmClass::Informational,
            matched_term: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlarmClass::*;

    /// The seeded vocabulary of `sql/schema/07_seed_and_dump.sql`.
    const SEED: &[(&str, AlarmClass)] = &[
        ("fault", Outage),
        ("breaker_trip", Outage),
        ("trip", Outage),
        ("power_failure", Outage),
        ("outage", Outage),
        ("loss of voltage", Outage),
        ("de-energized", Outage),
        ("energized", Restoration),
        ("restoration", Restoration),
        ("restored", Restoration),
        ("breaker close", Restoration),
    ];

    fn class_of(event_type: &str, alarm_type: Option<&str>) -> AlarmClass {
        classify(event_type, alarm_type, SEED.iter().copied()).class
    }

    #[test]
    fn real_producer_alarms() {
        assert_eq!(
            class_of("MV_AlarmLossOfVoltage", Some("De-energized")),
            Outage
        );
        assert_eq!(
            class_of("MV_AlarmRestoration", Some("Energized")),
            Restoration
        );
        assert_eq!(class_of("breaker_trip", Some("fault")), Outage);
        assert_eq!(class_of("BREAKER CLOSE", None), Restoration);
        assert_eq!(class_of("Loss_Of_Voltage", None), Outage);
    }

    #[test]
    fn longest_term_wins() {
        assert_eq!(class_of("status", Some("DE-ENERGIZED")), Outage);
        assert_eq!(class_of("status", Some("energized")), Restoration);
        let c = classify(
            "MV_AlarmLossOfVoltage",
            Some("De-energized"),
            SEED.iter().copied(),
        );
        assert_eq!(c.matched_term.as_deref(), Some("loss of voltage"));
    }

    #[test]
    fn unknown_texts_are_informational() {
        assert_eq!(
            class_of("MV_AlarmDoorOpen", Some("Intrusion")),
            Informational
        );
        assert_eq!(class_of("", None), Informational);
    }

    #[test]
    fn a_dba_term_extends_the_vocabulary() {
        let mut vocabulary = SEED.to_vec();
        assert_eq!(class_of("MV_AlarmUnderFrequency", None), Informational);
        vocabulary.push(("underfrequency", Outage));
        assert_eq!(
            classify("MV_AlarmUnderFrequency", None, vocabulary).class,
            Outage
        );
    }
}
