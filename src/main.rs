fn main() {
    std::process::exit(prom2om::cli::run().code());
}
