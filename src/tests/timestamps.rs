#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::db::timestamptz;
    use crate::payload::EventTime;

    fn as_text(t: TimestampWithTimeZone) -> String {
        Spi::get_one_with_args::<String>(
            "SELECT $1::timestamptz AT TIME ZONE 'UTC' || ''",
            &[t.into()],
        )
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn naive_times_are_read_in_the_session_time_zone() {
        let naive = EventTime::parse("2025-09-24T13:51:31.555369").unwrap();
        Spi::run("SET LOCAL TimeZone = 'Asia/Amman'").unwrap();
        assert_eq!(
            as_text(timestamptz(naive).unwrap()),
            "2025-09-24 10:51:31.555369"
        );
        Spi::run("SET LOCAL TimeZone = 'UTC'").unwrap();
        assert_eq!(
            as_text(timestamptz(naive).unwrap()),
            "2025-09-24 13:51:31.555369"
        );
    }

    #[pg_test]
    fn naive_times_agree_with_postgres_own_input_across_dst() {
        Spi::run("SET LOCAL TimeZone = 'Europe/Berlin'").unwrap();
        for text in [
            "2025-03-30T01:59:59",
            "2025-03-30T02:30:00",
            "2025-10-26T02:30:00",
            "2025-10-26T03:00:00.5",
        ] {
            let ours = timestamptz(EventTime::parse(text).unwrap()).unwrap();
            let theirs = Spi::get_one_with_args::<TimestampWithTimeZone>(
                "SELECT $1::timestamptz",
                &[text.into()],
            )
            .unwrap()
            .unwrap();
            assert_eq!(as_text(ours), as_text(theirs), "{text}");
        }
    }

    #[pg_test]
    fn absolute_times_ignore_the_session_time_zone() {
        Spi::run("SET LOCAL TimeZone = 'America/New_York'").unwrap();
        let t = timestamptz(EventTime::parse("2025-09-30T13:05:00+03:00").unwrap()).unwrap();
        assert_eq!(as_text(t), "2025-09-30 10:05:00");
    }
}
