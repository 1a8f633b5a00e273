//! Multipart uploads, as the server reads them: the multipart parser over arbitrary bytes,
//! then each part's file name as a `WorkspacePath` (a browser's folder upload names each file
//! by its path). Nothing panics, and a name that is accepted is a path inside the workspace.

use model::WorkspacePath;

const BOUNDARY: &str = "codepod-fuzz-boundary";

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let body = bytes::Bytes::copy_from_slice(data);
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
        let mut multipart = multer::Multipart::new(stream, BOUNDARY);
        futures_executor::block_on(async {
            // Bounded by the input: every part consumes some of it.
            for _ in 0..1024 {
                let Ok(Some(field)) = multipart.next_field().await else {
                    return;
                };
                if let Some(name) = field.file_name()
                    && let Ok(path) = WorkspacePath::parse(name)
                {
                    assert!(!path.as_str().split('/').any(|c| c == ".."), "{name:?}");
                }
                let _ = field.bytes().await;
            }
        });
    });
}
