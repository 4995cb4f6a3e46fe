# Source: temporalio/samples-python, hello/hello_activity_choice.py
#   (the PurchaseFruitsWorkflow sample: pick an activity per item, then run it).
# Rewritten in the same shape, not copied. Adapted: the workflow class's `run`
# method is a module-level function; the four order activities are plain
# module-level functions and `workflow.execute_activity(fn, arg)` is the
# deterministic fake `execute_activity`, which records the call as a step.
# Constructs: a function value held in a local and passed to an await,
# a for loop over a list of dataclasses, an if/elif chain on IntEnum members,
# raise with an f-string.
from dataclasses import dataclass
from enum import IntEnum

import resumable
from resumable.testing import step


class Fruit(IntEnum):
    APPLE = 1
    BANANA = 2
    CHERRY = 3
    ORANGE = 4


@dataclass
class ShoppingListItem:
    fruit: Fruit
    amount: int


@dataclass
class ShoppingList:
    items: list[ShoppingListItem]


def order_apples(amount: int) -> str:
    return f"Ordered {amount} Apples..."


def order_bananas(amount: int) -> str:
    return f"Ordered {amount} Bananas..."


def order_cherries(amount: int) -> str:
    return f"Ordered {amount} Cherries..."


def order_oranges(amount: int) -> str:
    return f"Ordered {amount} Oranges..."


async def execute_activity(activity, *args):
    """Stands for workflow.execute_activity: one recorded call, then the activity."""
    await step(activity.__name__, *args)
    return activity(*args)


@resumable.function
async def purchase_fruits(shopping_list: ShoppingList) -> str:
    ordered: list[str] = []
    for item in shopping_list.items:
        if item.fruit is Fruit.APPLE:
            order_function = order_apples
        elif item.fruit is Fruit.BANANA:
            order_function = order_bananas
        elif item.fruit is Fruit.CHERRY:
            order_function = order_cherries
        elif item.fruit is Fruit.ORANGE:
            order_function = order_oranges
        else:
            raise ValueError(f"Unrecognized fruit: {item.fruit}")
        ordered.append(await execute_activity(order_function, item.amount))
    return "".join(ordered)


ARGS = {
    "purchase_fruits": [
        (
            (
                ShoppingList(
                    [
                        ShoppingListItem(Fruit.APPLE, 8),
                        ShoppingListItem(Fruit.BANANA, 5),
                        ShoppingListItem(Fruit.CHERRY, 1),
                        ShoppingListItem(Fruit.ORANGE, 4),
                    ]
                ),
            ),
            {},
        ),
        # An item whose fruit is not a Fruit: the else branch raises after two orders.
        (
            (
                ShoppingList(
                    [
                        ShoppingListItem(Fruit.CHERRY, 2),
                        ShoppingListItem(Fruit.APPLE, 3),
                        ShoppingListItem(7, 1),
                    ]
                ),
            ),
            {},
        ),
    ],
}
RAISES = (ValueError,)
