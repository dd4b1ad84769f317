//! flyteidl2.auth.IdentityService: who the caller is. (AuthMetadataService, how to sign in,
//! is in the auth module.)

use tonic::{Request, Response, Status};

use flyteidl2::flyteidl::auth::identity_service_server::IdentityService;
use flyteidl2::flyteidl::auth::{UserInfoRequest, UserInfoResponse};

/// The subject UserInfo reports: the uid this backend runs as. Every run here is this user's.
pub fn local_subject() -> String {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }.to_string()
}

/// The name of the user this backend runs as: from the password database, else $USER.
fn local_user_name() -> String {
    // SAFETY: getuid cannot fail; getpwuid returns NULL or a pointer to static storage that
    // stays valid until the next getpw* call, and the strings are copied out right away.
    let uid = unsafe { libc::getuid() };
    let name = unsafe {
        let entry = libc::getpwuid(uid);
        if entry.is_null() || (*entry).pw_name.is_null() {
            None
        } else {
            Some(
                std::ffi::CStr::from_ptr((*entry).pw_name)
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    };
    name.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| format!("uid{uid}"))
}

pub struct IdentityApi;

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    async fn user_info(
        &self,
        _request: Request<UserInfoRequest>,
    ) -> Result<Response<UserInfoResponse>, Status> {
        let name = local_user_name();
        Ok(Response::new(UserInfoResponse {
            subject: local_subject(),
            name: name.clone(),
            preferred_username: name,
            ..Default::default()
        }))
    }
}
