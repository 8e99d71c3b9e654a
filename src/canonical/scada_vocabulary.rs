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

    /// The seeded vocabulary, read from the install script itself (one source of truth: a term
    /// added to or taken from the seed is tested as seeded).
    fn seed() -> Vec<(&'static str, AlarmClass)> {
        let script = include_str!("../../sql/schema/07_seed_and_dump.sql");
        let start = script
            .find("INSERT INTO @extschema@.scada_alarm_vocabulary")
            .expect("the seed inserts the vocabulary");
        let block = &script[start..start + script[start..].find(';').expect("the INSERT ends")];
        let pairs: Vec<(&str, AlarmClass)> = block
            .lines()
            .filter_map(|line| {
                let row = line.trim().strip_prefix("('")?;
                let (term, rest) = row.split_once("', '")?;
                let class = rest.split('\'').next()?;
                Some((term, AlarmClass::parse(class).expect("a known class")))
            })
            .collect();
        assert_eq!(pairs.len(), 20, "every seeded term was read");
        pairs
    }

    fn class_of(event_type: &str, alarm_type: Option<&str>) -> AlarmClass {
        classify(event_type, alarm_type, seed()).class
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
        let c = classify("MV_AlarmLossOfVoltage", Some("De-energized"), seed());
        assert_eq!(c.matched_term.as_deref(), Some("loss of voltage"));
    }

    #[test]
    fn ties_and_near_misses_against_the_real_seed() {
        // 'lockout' (outage) and 'reclose' (restoration) are the same length: a recloser that
        // locked out is an outage.
        assert_eq!(class_of("Recloser", Some("LOCKOUT")), Outage);
        assert_eq!(class_of("Auto-reclose lockout", None), Outage);
        assert_eq!(class_of("Auto-reclose", Some("successful")), Restoration);
        // 'breaker open' is an outage, 'breaker closed' (longer than 'breaker close') a restoration.
        assert_eq!(class_of("Breaker Open", None), Outage);
        assert_eq!(class_of("CB status", Some("Breaker closed")), Restoration);
        assert_eq!(
            classify("CB status", Some("Breaker closed"), seed())
                .matched_term
                .as_deref(),
            Some("breaker closed")
        );
        // 'De-energised' (British) is an outage, not the 'energised' restoration inside it.
        assert_eq!(class_of("Feeder", Some("De-energised")), Outage);
        assert_eq!(class_of("Feeder", Some("Energised")), Restoration);
        assert_eq!(class_of("Undervoltage", None), Outage);
        assert_eq!(class_of("Breaker TRIPPED", None), Outage);
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
        let mut vocabulary = seed();
        assert_eq!(class_of("MV_AlarmUnderFrequency", None), Informational);
        vocabulary.push(("underfrequency", Outage));
        assert_eq!(
            classify("MV_AlarmUnderFrequency", None, vocabulary).class,
            Outage
        );
    }
}
