//! Everything that delivers an order line, as one value the fulfilment use case takes.

use crate::adapters::course::CourseProviders;
use crate::adapters::license::LicenseKeys;
use crate::adapters::system::OsEntropy;
use crate::config::CourseProvider;
use crate::domain::Access;
use crate::ports::{
    Clock, CourseEnroller, EnrolError, Enrolment, Entropy, LicenseSigner, NotifyError,
    SellerNotifier, SignError,
};
use nightshift_license::License;

pub struct Providers<C: Clock> {
    pub courses: CourseProviders<C>,
    pub licenses: LicenseKeys,
}

impl<C: Clock> CourseEnroller for Providers<C> {
    async fn enrol(
        &self,
        provider: &CourseProvider,
        enrolment: &Enrolment,
    ) -> Result<Access, EnrolError> {
        self.courses.enrol(provider, enrolment).await
    }
}

impl<C: Clock> LicenseSigner for Providers<C> {
    fn sign(&self, license: &License) -> Result<String, SignError> {
        self.licenses.sign(license)
    }

    fn sign_revocations(&self, issued_at: u64, ids: &[String]) -> Result<String, SignError> {
        self.licenses.sign_revocations(issued_at, ids)
    }

    fn public_key(&self) -> Option<nightshift_license::VerifyingKey> {
        self.licenses.public_key()
    }
}

/// Download links are random.
impl<C: Clock> Entropy for Providers<C> {
    fn fill(&self, buf: &mut [u8]) {
        OsEntropy.fill(buf);
    }
}

impl<C: Clock> SellerNotifier for Providers<C> {
    async fn notify(
        &self,
        url: &str,
        secret: &str,
        body: &[u8],
        idempotency_key: &str,
    ) -> Result<(), NotifyError> {
        self.courses
            .notify(url, secret, body, idempotency_key)
            .await
    }
}
