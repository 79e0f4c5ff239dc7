fn main() {
    println!("prom2om");
}
