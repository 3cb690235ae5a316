//! The local federation: real bitcoind processes on regtest, real `sidechaind` processes, and the e2e
//! fault scenarios that run against them.
