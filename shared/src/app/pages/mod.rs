//! The buyer's pages: the buy page with its form, the order page, and the pages that say
//! what went wrong, all in the store's look.

mod buy;
mod error;
mod order;
mod seat;

pub use buy::{
    buy_page, current_buy_page, form_errors, Availability, BuyPage, BuyPageError, BuyRequest,
    FieldError, Held, HoldWindows,
};
pub use error::{confirm_page, error_page, for_browser, not_found_page, problem_answer, ErrorPage};
pub use order::{
    order_json, order_page, OrderJson, PageState, Visit, REFRESH_LIMIT, REFRESH_SECONDS,
};
pub use seat::seat_page;
