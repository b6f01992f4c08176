use deferred::chain;

fn main() {
    let d = chain! {
        1
        then |employee_id| employee_id * 10
        catch |f| 0
        then |salary| format!("#{employee_id} earns {salary}")
    };
    let _ = d.wait();
}
