//! Links the C++ runtime when RocksDB comes prebuilt: `scripts/common.sh` compiles RocksDB once into the
//! cache and points librocksdb-sys at it (`ROCKSDB_LIB_DIR`, `ROCKSDB_STATIC`), and librocksdb-sys names
//! the C++ runtime only when it compiles RocksDB itself. `testnet` links RocksDB too and uses this file.
fn main() {
    println!("cargo:rerun-if-env-changed=ROCKSDB_LIB_DIR");
    if std::env::var_os("ROCKSDB_LIB_DIR").is_some() {
        println!("cargo:rustc-link-lib=dylib=stdc++");
    }
}
