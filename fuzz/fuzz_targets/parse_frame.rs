#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| progjar_chat_fuzz::parse_frame(data));
