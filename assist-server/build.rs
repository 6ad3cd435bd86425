//! Links libvosk for batch QC of recordings (see ../assist-asr/vosk_link.rs).

include!("../assist-asr/vosk_link.rs");

fn main() {
    link_vosk();
}
