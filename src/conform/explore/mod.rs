//! `progjar-chat conform explore`.
mod compare;
mod coverage;
mod example;
mod generate;
mod session;
mod shrink;
