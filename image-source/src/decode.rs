//! Layer media types, and the stream decoder for each (gzip and zstd as they arrive).

use std::io::Read;

use crate::Error;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression of a layer media type; `None` when the blob is not a file-system layer
/// (an artifact, a foreign Windows layer, an empty descriptor).
pub fn compression(media_type: &str) -> Option<Compression> {
    if media_type.contains("foreign") {
        return None;
    }
    let is_layer = media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.diff.tar");
    if !is_layer {
        return None;
    }
    Some(if media_type.ends_with("gzip") {
        Compression::Gzip
    } else if media_type.ends_with("zstd") {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// A reader of the layer's tar, decompressing `blob` as it is read.
pub fn decoder<'a>(
    compression: Compression,
    blob: impl Read + 'a,
    digest: &str,
) -> Result<Box<dyn Read + 'a>, Error> {
    Ok(match compression {
        Compression::None => Box::new(blob),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
        Compression::Zstd => Box::new(ruzstd::decoding::StreamingDecoder::new(blob).map_err(
            |e| Error::Layer {
                digest: digest.to_string(),
                message: format!("not a zstd stream: {e}"),
            },
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        use Compression::*;
        for (t, c) in [
            ("application/vnd.oci.image.layer.v1.tar", Some(None)),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Some(Gzip)),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Some(Zstd)),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Some(Gzip),
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Option::None,
            ),
            ("application/vnd.oci.empty.v1+json", Option::None),
        ] {
            assert_eq!(compression(t), c, "{t}");
        }
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        let mut r = decoder(
            Compression::Gzip,
            &b"\x1f\x8b\x08\x00garbage-garbage"[..],
            "d",
        )
        .expect("lazy");
        assert!(r.read_to_end(&mut out).is_err());
        assert!(decoder(Compression::Zstd, &b"nope"[..], "d").is_err());
    }
}
