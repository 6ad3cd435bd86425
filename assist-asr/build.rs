//! Links libvosk (see ../assist-asr/vosk_link.rs).

include!("../assist-asr/vosk_link.rs");

fn main() {
    link_vosk();
}
