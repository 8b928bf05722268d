// A test `Actuator` that records, per call, the Service's name and the decision's kind (or the
// warning's reason). Shared by the cycle's unit tests (src/cycle.rs) and the integration tests
// (tests/prometheus.rs) through `include!`, so that no test code is compiled into the library:
// the including scope must have `Actuator`, `Decision`, `Error` and `ManagedService` in scope.

#[derive(Default)]
struct Recording(std::sync::Mutex<Vec<(String, &'static str)>>);

impl Actuator for Recording {
    async fn act(&self, svc: &ManagedService, d: &Decision) -> Result<(), Error> {
        self.0.lock().unwrap().push((svc.name.clone(), d.kind()));
        Ok(())
    }
    async fn warn(
        &self,
        svc: &ManagedService,
        reason: &'static str,
        _: String,
    ) -> Result<(), Error> {
        self.0.lock().unwrap().push((svc.name.clone(), reason));
        Ok(())
    }
}
