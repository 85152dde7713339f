//! Pure types and rules: money, identifiers, orders and their state machine. No I/O.

mod country;
mod ids;
mod money;
mod order;
mod phone;
mod seats;
mod shipping;

pub use country::{all_countries, country_name};
pub use ids::{
    BuyerName, DownloadToken, Email, OrderId, OrderToken, ParseError, Quantity, Sku, TokenCheck,
    TokenHash,
};
pub use money::{Currency, Money, MoneyError};
pub use order::{
    Access, FulfillmentKind, Line, LineResult, LineState, Order, OrderStatus, PaymentEvent,
    PaymentMethod, PaymentOutcome, SeenEvent, TransitionRefused, CHECK_AFTER_SECONDS,
};
pub use phone::{Phone, PhoneError, TextConsent};
pub use seats::{seat_number, Seat, SeatHolder, SeatRefused, SeatState, SeatToken};
pub use shipping::{AddressError, AddressForm, Parcel, Shipping, ShippingAddress};
