"""English spoken by festival's voices of other languages: the phones of festival's US English
front end (its ``radio`` phone set) mapped onto each voice's own phone set.

Why: Debian has three English festival voices but a dozen voices of other languages, each
recorded from another human speaker. Driven through a phone map, those voices speak accented
English in speakers that no English voice has. Each English phone becomes the nearest one or
two phones of the target set (a diphthong becomes two); a phone the target lacks takes the
closest by place and manner, and ``h`` is dropped where the language has none. The accent is
the point, the transcript stays the English text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# festival's US English phone set (kal_diphone's front end), pauses included.
RADIO_PHONES = frozenset(
    "aa ae ah ao aw ax axr ay b ch d dh dx eh el em en er ey f g hh hv ih iy jh k l m n nx ng "
    "ow oy p r s sh t th uh uw v w y z zh pau h# brth".split()
)
_PAUSES = ("pau", "h#", "brth")


def _phone_map(silence: str, pairs: str) -> dict[str, tuple[str, ...]]:
    """``"aa=a: ae=e ..."`` -> {"aa": ("a:",), ...}; ``a+u`` is two phones, ``hh=`` none."""
    out = {p: (silence,) for p in _PAUSES}
    for pair in pairs.split():
        english, target = pair.split("=")
        out[english] = tuple(target.split("+")) if target else ()
    return out


# The target phone sets (festival's phone set names), as each voice's PhoneSet lists them.
PHONE_SETS: dict[str, frozenset[str]] = {
    "italian": frozenset(
        "i e E a o O u i1 e1 E1 a1 o1 O1 u1 j w p t k b d g f s S v z Z ts tS dz dZ m n J ng "
        "nf l L r #".split()
    ),
    "czech": frozenset(
        "# _ a a: b c c~ ch d d~ dz dz~ e e: f g h i i: j k l m n n* n~ o o: p r r~ r~* s s~ t "
        "t~ u u: v z z~".split()
    ),
    "finnish": frozenset(
        "a e i o u y @ 7 & a: e: i: o: u: y: @: 7: p t k b d g f T s S h v m n N l L r j w p: "
        "t: k: b: d: g: f: T: D: s: z: S: Z: h: v: m: n: N: w: l: L: r: j: ## #".split()
    ),
    "hindi": frozenset(
        "a aa ih iy uh uw eh ee ay oh oo aw f k g ch T D N th dh n p b m y r l v L R s sh j h "
        "ksh sri x kh gh td tth ddh bh zh @ pau w".split()
    ),
}

PHONE_MAPS: dict[str, dict[str, tuple[str, ...]]] = {
    # Italian has no h, no dental fricatives and no schwa.
    "italian": _phone_map(
        "#",
        """
        aa=a1 ae=E1 ah=a ao=O1 aw=a1+u ax=a axr=e+r ay=a1+i b=b ch=tS d=d dh=d dx=d eh=E1 el=l
        em=m en=n er=e+r ey=e1+i f=f g=g hh= hv= ih=i iy=i1 jh=dZ k=k l=l m=m n=n nx=n ng=ng
        ow=o1+u oy=O1+i p=p r=r s=s sh=S t=t th=t uh=u uw=u1 v=v w=w y=j z=z zh=Z""",
    ),
    # Czech: c~ is the "ch" affricate, s~/z~ the postalveolar fricatives, n* the velar nasal.
    "czech": _phone_map(
        "#",
        """
        aa=a: ae=e ah=a ao=o: aw=a+u ax=e axr=e+r ay=a+j b=b ch=c~ d=d dh=d dx=d eh=e el=l
        em=m en=n er=e+r ey=e+j f=f g=g hh=h hv=h ih=i iy=i: jh=dz~ k=k l=l m=m n=n nx=n ng=n*
        ow=o+u oy=o+j p=p r=r s=s sh=s~ t=t th=t uh=u uw=u: v=v w=u y=j z=z zh=z~""",
    ),
    # Finnish: @ is the open front vowel of "ae", 7 the front rounded one, T the dental fricative.
    "finnish": _phone_map(
        "#",
        """
        aa=a: ae=@ ah=a ao=o: aw=a+u ax=e axr=7+r ay=a+i b=b ch=t+S d=d dh=d dx=d eh=e el=l
        em=m en=n er=7+r ey=e+i f=f g=g hh=h hv=h ih=i iy=i: jh=d+j k=k l=l m=m n=n nx=n ng=N
        ow=o+u oy=o+i p=p r=r s=s sh=S t=t th=T uh=u uw=u: v=v w=w y=j z=s zh=S""",
    ),
    # The NSK voices' Indian English set: T/D retroflex stops (Indian English t/d), th/dh the
    # dental fricatives, @ the schwa-like open vowel; no z, which Indian English often
    # makes "j".
    "hindi": _phone_map(
        "pau",
        """
        aa=aa ae=ay ah=a ao=aw aw=a+uh ax=@ axr=@+r ay=a+ih b=b ch=ch d=D dh=dh dx=D eh=eh
        el=l em=m en=n er=@+r ey=ee f=f g=g hh=h hv=h ih=ih iy=iy jh=j k=k l=l m=m n=n nx=n
        ng=N ow=oo oy=oo+ih p=p r=r s=s sh=sh t=T th=th uh=uh uw=uw v=v w=w y=y z=j zh=zh""",
    ),
}


@dataclass(frozen=True)
class Segment:
    """One phone, its duration in seconds and its f0 targets (seconds into the phone, Hz)."""

    phone: str
    duration: float
    targets: tuple[tuple[float, float], ...] = ()


def map_segments(
    segments: Iterable[Segment],
    phone_map: Mapping[str, Sequence[str]],
    f0_factor: float = 1.0,
    rate: float = 1.0,
) -> list[Segment]:
    """Each English segment as the target's phones, its time split 60/40 over a pair.

    ``f0_factor`` scales every target (the English front end speaks at a male voice's pitch),
    ``rate`` divides every duration. A phone mapped to none gives its time to nothing.
    """
    out: list[Segment] = []
    for seg in segments:
        phones = phone_map[seg.phone]
        if not phones:
            continue
        shares = (1.0,) if len(phones) == 1 else (0.6, 0.4)
        start = 0.0
        for k, (phone, share) in enumerate(zip(phones, shares, strict=True)):
            length = seg.duration * share
            last = k == len(phones) - 1  # takes the targets at or past the segment's end
            targets = tuple(
                ((t - start) / rate, f0 * f0_factor)
                for t, f0 in seg.targets
                if start <= t and (t < start + length or last)
            )
            out.append(Segment(phone, length / rate, targets))
            start += length
    return out


def segments_scheme(segments: Sequence[Segment]) -> str:
    """The argument of festival's ``(Utterance Segments ...)``: ``((a 0.1 (0.05 120)) ...)``."""
    parts = []
    for seg in segments:
        targets = "".join(f" ({t:.4f} {f0:.1f})" for t, f0 in seg.targets)
        parts.append(f"({seg.phone} {seg.duration:.4f}{targets})")
    return "(" + " ".join(parts) + ")"
