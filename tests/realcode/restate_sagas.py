# Source: restatedev/examples, python/patterns-use-cases/sagas/app.py
#   (BookingWorkflow.run: book a flight, a car and a hotel; before each
#   booking, register a lambda that undoes it; on a TerminalError run the
#   undo actions in reverse order and re-raise).
# Rewritten in the same shape, not copied. Adapted: the handler is a
# decorated module-level function; `ctx` is the fake context of
# tests/realcode/_restate.py; the three booking clients are deterministic
# fakes (a hotel booking for "Hotel Full" fails terminally).
# Constructs: lambdas that read the function's locals (`ctx`, `req`) appended
# to a list that lives across awaits, `for ... in reversed(list)` awaiting
# each lambda's result, `raise e` in a handler.
from pydantic import BaseModel

import resumable
from tests.realcode._restate import Context, TerminalError


class FlightRequest(BaseModel):
    flight_id: str
    passenger_name: str


class CarRentalRequest(BaseModel):
    pickup_location: str
    rental_date: str


class HotelRequest(BaseModel):
    arrival_date: str
    departure_date: str
    name: str


class BookingRequest(BaseModel):
    customer_id: str
    flight: FlightRequest
    car: CarRentalRequest
    hotel: HotelRequest


def book_flight(customer_id: str, flight: FlightRequest) -> str:
    return f"flight {flight.flight_id} booked for {customer_id}"


def cancel_flight(customer_id: str) -> str:
    return f"flight cancelled for {customer_id}"


def book_car(customer_id: str, car: CarRentalRequest) -> str:
    return f"car at {car.pickup_location} booked for {customer_id}"


def cancel_car(customer_id: str) -> str:
    return f"car cancelled for {customer_id}"


def book_hotel(customer_id: str, hotel: HotelRequest) -> str:
    if hotel.name == "Hotel Full":
        raise TerminalError(f"{hotel.name} has no rooms left")
    return f"hotel {hotel.name} booked for {customer_id}"


def cancel_hotel(customer_id: str) -> str:
    return f"hotel cancelled for {customer_id}"


@resumable.function
async def run(ctx: Context, req: BookingRequest):
    # The undo actions, in the order the bookings were made.
    compensations = []

    try:
        # Each booking registers its compensation before it runs.
        compensations.append(
            lambda: ctx.run_typed("Cancel flight", cancel_flight, customer_id=req.customer_id)
        )
        await ctx.run_typed(
            "Book flight", book_flight, customer_id=req.customer_id, flight=req.flight
        )

        compensations.append(
            lambda: ctx.run_typed("Cancel car", cancel_car, customer_id=req.customer_id)
        )
        await ctx.run_typed("Book car", book_car, customer_id=req.customer_id, car=req.car)

        compensations.append(
            lambda: ctx.run_typed("Cancel hotel", cancel_hotel, customer_id=req.customer_id)
        )
        await ctx.run_typed("Book hotel", book_hotel, customer_id=req.customer_id, hotel=req.hotel)

    # Terminal errors are not retried: undo what was done, then fail.
    except TerminalError as e:
        for compensation in reversed(compensations):
            await compensation()
        raise e


def _request(hotel: str) -> BookingRequest:
    return BookingRequest(
        customer_id="cust-7",
        flight=FlightRequest(flight_id="LX318", passenger_name="Ann"),
        car=CarRentalRequest(pickup_location="GVA", rental_date="2024-06-01"),
        hotel=HotelRequest(arrival_date="2024-06-01", departure_date="2024-06-04", name=hotel),
    )


ARGS = {
    "run": [
        ((Context("b1"), _request("Beau Rivage")), {}),
        ((Context("b2"), _request("Hotel Full")), {}),
    ],
}
RAISES = (TerminalError,)
