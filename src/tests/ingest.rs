#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn uuid_v7_is_time_ordered() {
        let a = Spi::get_one::<pgrx::Uuid>("SELECT oms_uuid_v7()")
            .unwrap()
            .unwrap();
        let b = Spi::get_one::<pgrx::Uuid>("SELECT oms_uuid_v7()")
            .unwrap()
            .unwrap();
        assert!(a.as_bytes() < b.as_bytes());
        assert_eq!(a.as_bytes()[6] >> 4, 7);
    }
}
