//! Text messages on AWS: End User Messaging SMS (`pinpoint-sms-voice-v2` `SendTextMessage`)
//! or SNS (`Publish` to a phone number), as `[sms] via` says. Both send as transactional
//! messages: they are about the buyer's own order.

use crate::config::{SmsService, Store};
use crate::ports::{OutgoingText, TextError, TextSender};
use aws_sdk_pinpointsmsvoicev2::types::MessageType;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_types::SdkConfig;

pub enum AwsTexts {
    /// The store sends no texts (`[sms]` is absent): nothing should ask to.
    Off,
    EndUserMessaging {
        client: aws_sdk_pinpointsmsvoicev2::Client,
        origination_identity: Option<String>,
    },
    Sns(aws_sdk_sns::Client),
}

impl AwsTexts {
    pub fn from_store(store: &Store, aws: &SdkConfig) -> AwsTexts {
        match &store.sms {
            None => AwsTexts::Off,
            Some(sms) => match sms.via {
                SmsService::EndUserMessaging => AwsTexts::EndUserMessaging {
                    client: aws_sdk_pinpointsmsvoicev2::Client::new(aws),
                    origination_identity: sms.origination_identity.clone(),
                },
                SmsService::Sns => AwsTexts::Sns(aws_sdk_sns::Client::new(aws)),
            },
        }
    }
}

fn failed(e: impl std::error::Error + Send + Sync + 'static) -> TextError {
    TextError(Box::new(e))
}

impl TextSender for AwsTexts {
    async fn send(&self, text: &OutgoingText) -> Result<(), TextError> {
        match self {
            AwsTexts::Off => Err(TextError("this store sends no text messages".into())),
            AwsTexts::EndUserMessaging {
                client,
                origination_identity,
            } => {
                client
                    .send_text_message()
                    .destination_phone_number(text.to.as_str())
                    .message_body(&text.text)
                    .message_type(MessageType::Transactional)
                    .set_origination_identity(origination_identity.clone())
                    .send()
                    .await
                    .map_err(failed)?;
                Ok(())
            }
            AwsTexts::Sns(client) => {
                let transactional = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("Transactional")
                    .build()
                    .map_err(failed)?;
                client
                    .publish()
                    .phone_number(text.to.as_str())
                    .message(&text.text)
                    .message_attributes("AWS.SNS.SMS.SMSType", transactional)
                    .send()
                    .await
                    .map_err(failed)?;
                Ok(())
            }
        }
    }
}
