"""The demo site's articles: original text written for the demo, with their comments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["ARTICLES", "Article", "Comment", "find_article"]


@dataclass(frozen=True, slots=True)
class Comment:
    """A reader's comment under an article."""

    author: str
    """The name the reader comments under."""
    posted: str
    """When it was posted, as the page shows it."""
    text: str
    """What the reader wrote."""


@dataclass(frozen=True, slots=True)
class Article:
    """One news article of the demo site."""

    slug: str
    """The article's part of the URL."""
    section: str
    """The section it appears in, for the breadcrumb."""
    headline: str
    """The headline."""
    standfirst: str
    """The sentence under the headline that sums the story up."""
    author: str
    """Who wrote it."""
    published: date
    """The day it was published."""
    paragraphs: tuple[str, ...]
    """The body text."""
    comments: tuple[Comment, ...]
    """Readers' comments, oldest first."""


def _text(body: str) -> tuple[str, ...]:
    """Paragraphs from text written with a blank line between them, each joined onto one line."""
    return tuple(" ".join(paragraph.split()) for paragraph in body.strip().split("\n\n"))


ARTICLES: tuple[Article, ...] = (
    Article(
        slug="night-ferry-returns",
        section="Local",
        headline="The night ferry returns to the harbour after four years",
        standfirst=(
            "The last crossing now leaves at 23:40, and the council says the service will pay for itself "
            "if a hundred passengers use it each night."
        ),
        author="Mara Lindqvist",
        published=date(2026, 11, 18),
        paragraphs=_text(
            """
            For the first time since the spring of 2022, the lights of the harbour ferry could be seen crossing
            the water after dark on Monday, when the late service between the old town quay and the island
            returned with a single, slightly delayed departure at 21:10.

            The service was cut when the operator lost two of its four crews and could no longer staff the
            evening shift. Since then, islanders working late in the town have relied on a night bus that takes
            fifty minutes to go around the bay, or on friends with boats.

            "I have been asking for this every winter," said Ingrid Holm, a nurse at the district hospital who
            lives on the island. "When the last boat left at seven, I had to choose between my shift and getting
            home. Tonight I will be in my kitchen twenty minutes after I finish."

            The council has agreed to underwrite the late crossings for an eighteen-month trial. Its transport
            committee estimates the cost at a little over 400,000 a year, and says the service would break even
            with around a hundred passengers a night, once the summer timetable adds visitors to the regular
            commuters.

            The operator has trained six new skippers over the past year, two of them former fishermen from the
            island. Departures will run every forty minutes until 23:40 from Sunday to Thursday, and until half
            past midnight on Fridays and Saturdays.

            Not everyone is convinced. Residents of the quayside flats have asked for the ferry's horn to be
            replaced with a quieter signal after ten in the evening, and the harbour master has agreed to test
            one during the first month.

            Passenger numbers for the first week will be published on the council's website, and the committee
            will review the trial next autumn.
            """
        ),
        comments=(
            Comment(
                "Tomas B.",
                "18 November, 22:15",
                "Took the 21:50 tonight. Half full, which is more than I expected on a Monday in November.",
            ),
            Comment(
                "harbourside_anna",
                "19 November, 07:02",
                "Happy for the islanders, but please do something about that horn. It rattles our windows.",
            ),
            Comment(
                "Per Ekdahl",
                "19 November, 12:40",
                "Eighteen months is a fair trial. The summer numbers will decide it, as they always do.",
            ),
        ),
    ),
    Article(
        slug="allotments-shared-plots",
        section="Community",
        headline="With waiting lists at a record, allotment holders are splitting their plots",
        standfirst=(
            "More than 600 people are waiting for a plot in the town's eleven allotment gardens. "
            "Some growers have started sharing theirs with strangers."
        ),
        author="Jonas Achterberg",
        published=date(2026, 11, 12),
        paragraphs=_text(
            """
            Eleven years ago, when Ruth Okafor put her name down for an allotment on Mill Lane, she was told to
            expect a wait of about eighteen months. She got her plot last March. The list she joined now has 640
            names on it, and the allotment association has stopped quoting waiting times at all.

            Rather than wait, a growing number of would-be gardeners are taking up an offer that started on the
            noticeboard of the Mill Lane site: holders who cannot keep up with a full plot give half of it, for
            a share of the harvest and help with the digging.

            "It began with a note in the shed that said, more or less, I have too many courgettes and not enough
            knees," said Frank Delacroix, 74, who now shares his plot with a family of four from the flats
            across the road. "They do the heavy work, I tell them what went wrong in 1998, and we both eat
            better."

            The association says 38 plots are now split in this way, and it has written a short agreement that
            both parties sign, so that a shared plot does not turn into a dispute about who owns the
            strawberries.

            The council, which owns the land, has been asked to open a twelfth site on the former bus depot by
            the ring road. Officers have said the soil there would need to be tested first, and that a decision
            is unlikely before the summer.

            In the meantime, the association is running free introductory sessions on Saturday mornings for
            people on the waiting list, covering compost, crop rotation and how to talk to a neighbour about
            their bindweed.
            """
        ),
        comments=(
            Comment(
                "Lena M.",
                "12 November, 18:31",
                "We share a plot on Mill Lane and it's the best thing we've done since moving here.",
            ),
            Comment(
                "G. Hartley",
                "13 November, 09:14",
                "The bus depot site floods every January. Test the drainage as well as the soil.",
            ),
        ),
    ),
    Article(
        slug="library-late-opening",
        section="Culture",
        headline="Late opening at the central library draws night-shift workers and students",
        standfirst=(
            "A six-month trial keeps the reading room open until midnight three days a week. Visits after "
            "nine in the evening have doubled since September."
        ),
        author="Sofia Marchetti",
        published=date(2026, 11, 5),
        paragraphs=_text(
            """
            At eleven o'clock on a Wednesday night, the reading room of the central library is quieter than a
            church and nearly as full. A bus driver on her break reads a thriller by the window. Two students
            share a table and a single, carefully rationed bag of crisps.

            The library has been open until midnight on Mondays, Wednesdays and Fridays since the start of
            September, in a trial paid for by a grant from a local foundation. Librarians say visits after nine
            in the evening have more than doubled, from around 40 a night to just over 90.

            "We always knew that opening hours decide who a library is for," said head librarian Aiko Brandt.
            "Nine to five suits people who work nine to five. The late hours brought in people we had simply
            never seen: cleaners, carers, bakers before their shift."

            The late opening costs less than expected, because it needs only two staff and the building's
            heating runs overnight anyway to protect the archive. Security has been the main worry, but the
            library reports no incidents beyond a lost umbrella and a spilled coffee.

            Whether the late hours survive the trial depends on the city's budget for next year, which will be
            debated in February. The library has asked readers who use the service to say so on a card at the
            front desk; more than 300 have been filled in.

            The reading room's most popular loan after nine, the librarians report, is not a novel but a guide
            to passing the driving theory test.
            """
        ),
        comments=(
            Comment(
                "nightshift_rob",
                "5 November, 23:58",
                "Writing this from the reading room. Please keep it open. It's warm, it's quiet, it's ours.",
            ),
            Comment(
                "Marta K.",
                "6 November, 08:20",
                "Could the café stay open late too? Even just a kettle and an honesty box.",
            ),
            Comment(
                "D. Osei",
                "6 November, 19:45",
                "Good to see public money spent on something people actually use at the hours they use it.",
            ),
        ),
    ),
)


def find_article(slug: str) -> Article | None:
    """The article with ``slug``, or None."""
    return next((article for article in ARTICLES if article.slug == slug), None)
