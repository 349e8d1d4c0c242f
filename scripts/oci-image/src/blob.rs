//! A content-addressed blob (config or layer).

use oci_spec::image::{Descriptor, Digest, MediaType};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::str::FromStr;

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A blob with its media type and, optionally, a title annotation
/// (`org.opencontainers.image.title`, the only annotation used, so that the
/// serialised descriptor is the same on every run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    media_type: &'static str,
    title: Option<&'static str>,
    data: Vec<u8>,
    digest: String,
}

impl Blob {
    pub(crate) fn new(
        media_type: &'static str,
        title: Option<&'static str>,
        data: Vec<u8>,
    ) -> Self {
        let digest = sha256_digest(&data);
        Self {
            media_type,
            title,
            data,
            digest,
        }
    }

    /// The media type in the manifest's descriptor.
    pub fn media_type(&self) -> &'static str {
        self.media_type
    }

    /// `sha256:<hex>` of the content.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The content.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The descriptor the manifest lists for this blob.
    pub(crate) fn descriptor(&self) -> Result<Descriptor, oci_spec::OciSpecError> {
        let mut descriptor = Descriptor::new(
            MediaType::from(self.media_type),
            self.data.len() as u64,
            Digest::from_str(&self.digest)?,
        );
        if let Some(title) = self.title {
            descriptor.set_annotations(Some(HashMap::from([(
                oci_spec::image::ANNOTATION_TITLE.to_owned(),
                title.to_owned(),
            )])));
        }
        Ok(descriptor)
    }
}
