// The pool of worked examples that the instruction prompt draws its demonstrations from (MegaPairs
// draws 5 of 50 per call; the paper's pool was never released, so this one is ours). Every entry
// shows the two rules the LLM must learn: content shared with the source image is named only with
// non-specific pronouns (it, them, this, the same ...), and what only the target has is stated
// plainly. Entries are varied on purpose (subjects, scenes, counts, colours, styles, viewpoints,
// text in images, removals) so that no single kind of edit dominates the generated instructions.
// Changing this pool changes PROMPT_VERSION (see prompts.ts).

export interface Demonstration {
  /** An MLLM-style description: "Both images ... However, the Source Image ..., whereas the Target Image ...". */
  description: string;
  /** 3 to 5 instructions that, with the source image, should retrieve the target image. */
  instructions: string[];
}

export const DEMONSTRATIONS: readonly Demonstration[] = [
  {
    description:
      'Both images show a golden retriever with a red collar sitting upright and looking at the camera. However, the Source Image places the dog on a sandy beach in bright sunlight, whereas the Target Image shows it sitting in fresh snow, with flakes falling and pine trees behind.',
    instructions: [
      'Put it in fresh snow with pine trees behind.',
      'The same one, but sitting in a snowfall instead of on sand.',
      'What would this look like in winter, with snow falling?',
      'Move it from the beach to a snowy forest.',
    ],
  },
  {
    description:
      'Both images show red apples on a white wooden table in soft daylight. However, the Source Image contains three apples lined up in a row, whereas the Target Image has five apples piled in a woven wicker basket.',
    instructions: [
      'Five of them piled in a woven basket.',
      'Show more of these, gathered in a wicker basket.',
      'Same setting, but five in a basket instead of three in a row.',
    ],
  },
  {
    description:
      'Both images show a glass shop door with a brass handle and a small sign hanging behind the glass. However, the Source Image\'s sign reads "OPEN" in green letters with the shop lit inside, whereas the Target Image\'s sign reads "CLOSED" in red letters and the lights inside are off.',
    instructions: [
      'Make it say CLOSED in red letters.',
      'This, but closed for the day with the lights off inside.',
      'Flip it to read "CLOSED" and darken the interior.',
    ],
  },
  {
    description:
      'Both images depict the Eiffel Tower seen from the Champ de Mars on a clear day, framed by rows of trees. However, the Source Image is a sharp colour photograph, whereas the Target Image is a loose watercolour painting with soft washes of blue and ochre and visible paper texture.',
    instructions: [
      'Render it as a loose watercolour painting.',
      'The same view, painted in soft blue and ochre washes.',
      'Turn this photo into a watercolour with visible paper texture.',
      'A hand-painted version of it.',
    ],
  },
  {
    description:
      'Both images show a yellow vintage Volkswagen Beetle parked on a cobblestone street in front of a bakery. However, the Source Image shows the car head-on with its round headlights, whereas the Target Image shows it from the side, revealing the running boards and white-walled tyres.',
    instructions: [
      'Show it from the side instead of head-on.',
      'The same one in side profile, with the white-walled tyres visible.',
      'Turn the camera to see this from its left side.',
    ],
  },
  {
    description:
      'Both images show the Manhattan skyline across the river with the Empire State Building near the centre. However, the Source Image was taken at midday under a pale blue sky, whereas the Target Image was taken at night, with thousands of lit windows reflecting on the dark water.',
    instructions: ['Show it at night with lit windows reflecting on the water.', 'This view after dark.', 'What if it were photographed at night?'],
  },
  {
    description:
      'Both images are close-up portraits of an elderly man with a white beard and round glasses against a grey backdrop. However, the Source Image shows him with a serious, closed-mouth expression, whereas the Target Image shows him laughing with his eyes crinkled and his head tilted back.',
    instructions: [
      'Make him laugh with his head tilted back.',
      'The same portrait, but laughing heartily.',
      'Find one where he is laughing instead of looking serious.',
    ],
  },
  {
    description:
      'Both images are flat cartoon emoji of a round yellow face with a wide, open-mouthed grin. However, the Source Image has plain open eyes, whereas the Target Image has tightly squinting eyes and tears of joy streaming from both sides.',
    instructions: [
      'Add tears of joy and squinting eyes.',
      'The same one, but laughing so hard it cries.',
      'Make it squint, with tears flying out on both sides.',
      'A version of this that is crying with laughter.',
    ],
  },
  {
    description:
      'Both images show a pet curled up asleep on a green velvet sofa beside a knitted cushion. However, the Source Image shows a grey tabby cat, whereas the Target Image shows a small brown dachshund lying in the same spot.',
    instructions: [
      'Swap the animal for a small brown dachshund.',
      'A dachshund sleeping there instead.',
      'The same scene with a sausage dog instead of a cat.',
    ],
  },
  {
    description:
      'Both images show a single oak tree in the middle of a rolling meadow with a wooden fence in the foreground. However, the Source Image has orange autumn leaves under an overcast sky, whereas the Target Image shows it in spring, with fresh green leaves and yellow wildflowers around its base.',
    instructions: [
      'Show it in spring with fresh green leaves.',
      'This in springtime, surrounded by yellow wildflowers.',
      'Change the season from autumn to spring.',
    ],
  },
  {
    description:
      'Both images show a round pizza with a thin, charred crust on a wooden board, viewed from above. However, the Source Image is a margherita with tomato, mozzarella and basil, whereas the Target Image is topped with pepperoni, black olives and green peppers, and one slice has been taken.',
    instructions: [
      'Top it with pepperoni, black olives and green peppers.',
      'The same, but with a slice missing and pepperoni on top.',
      'Find this with meat and vegetable toppings instead of basil.',
    ],
  },
  {
    description:
      'Both images relate to Formula 1 racing and carry the red livery of the Ferrari team. However, the Source Image shows the car speeding along the track, whereas the Target Image shows a driver in a red race suit holding his helmet, standing in the pit lane.',
    instructions: [
      'Show the driver of it, standing in the pit lane.',
      'A person in a red race suit from the same team.',
      'Instead of the car, find whoever drives it, helmet in hand.',
    ],
  },
  {
    description:
      'Both images show a simple chair with four straight legs and a slatted back, photographed against a white wall. However, the Source Image is made of light oak wood, whereas the Target Image is made of glossy red plastic moulded in one piece.',
    instructions: ['Make it out of glossy red plastic.', 'The same design in moulded red plastic.', 'What if this were plastic instead of wood?'],
  },
  {
    description:
      'Both images show a narrow street in an old European town lined with pastel houses, with a church tower at the end. However, the Source Image is dry and sunny with long shadows, whereas the Target Image is rainy, with wet, reflective cobbles and people walking under umbrellas.',
    instructions: ['Make it a rainy day with people under umbrellas.', 'This street in the rain, the cobbles shining wet.', 'Show it during a downpour.'],
  },
  {
    description:
      'Both images show a wooden desk by a window with an open laptop and a potted succulent. However, the Source Image also has a steaming mug of coffee beside the laptop, whereas the Target Image has no mug but includes a pair of over-ear headphones and an open notebook.',
    instructions: [
      'Remove the coffee mug and add headphones and an open notebook.',
      'The same setup, but with headphones instead of the coffee.',
      'Replace the mug with a notebook and a pair of headphones.',
    ],
  },
  {
    description:
      'Both images show a knee-length sleeveless dress with a flared skirt on a mannequin in front of a plain backdrop. However, the Source Image is solid navy blue, whereas the Target Image is mustard yellow with a small white polka-dot pattern.',
    instructions: [
      'Make it mustard yellow with white polka dots.',
      'The same cut in yellow with a dotted pattern.',
      'Find this in a polka-dot print.',
      'Change the colour to mustard and add small white dots.',
    ],
  },
  {
    description:
      'Both images show a wooden rowing boat on a calm lake at sunrise, with mist over the water. However, the Source Image has a single person rowing, whereas the Target Image has a family of four sitting in it, all wearing orange life jackets.',
    instructions: [
      'Put a family of four in it, all wearing life jackets.',
      'The same, but with four people in orange life jackets.',
      'Fill it with a family instead of a lone rower.',
    ],
  },
  {
    description:
      'Both images feature a red lighthouse with a white band standing on a rocky headland. However, the Source Image is a tight close-up of the lantern room at the top, whereas the Target Image is a wide shot showing the whole tower, the cliffs and waves breaking below.',
    instructions: [
      'Zoom out to show all of it, with the cliffs and waves below.',
      'A wide shot of this, including the rocky coastline.',
      'Pull back to reveal the whole tower.',
    ],
  },
  {
    description:
      'Both images show a couple dancing the tango in an empty ballroom with tall arched windows. However, the Source Image is in warm full colour, whereas the Target Image is a grainy black-and-white photograph with strong contrast.',
    instructions: ['Make it black and white and grainy.', 'This as a high-contrast monochrome photo.', 'Drain all the colour from it.'],
  },
  {
    description:
      'Both images show a white ceramic mug on a marble counter with something printed on its side. However, the Source Image has a small green coffee-shop logo, whereas the Target Image reads "Good Morning" in black handwritten lettering above a little drawing of a sun.',
    instructions: [
      'Print "Good Morning" on it in black handwriting.',
      'One with a hand-lettered morning greeting and a little sun.',
      'The same thing, but the print says Good Morning.',
    ],
  },
  {
    description:
      "Both images show a child riding a red bicycle along a tree-lined suburban pavement. However, the Source Image's rider is a toddler using training wheels, whereas the Target Image's rider is an older boy of about ten, riding without training wheels and wearing a blue helmet.",
    instructions: [
      'An older boy riding it without training wheels.',
      'The same, but the rider is about ten and wears a blue helmet.',
      'Take the training wheels off and make the rider older.',
    ],
  },
  {
    description:
      'Both images show a Gothic cathedral with pointed arches and stained-glass windows. However, the Source Image is taken inside, looking down the nave toward the altar, whereas the Target Image shows the exterior west front with its two towers and a square full of tourists.',
    instructions: [
      'Show it from outside, with its two towers.',
      'The outside of this, seen from the busy square.',
      'What does this look like from the street?',
    ],
  },
  {
    description:
      'Both images show a tabby cat on a wooden windowsill framed by sheer white curtains. However, the Source Image shows the cat lying down with its eyes closed, whereas the Target Image shows it standing on its hind legs, swatting at a butterfly on the glass.',
    instructions: [
      'Make it stand up and paw at a butterfly.',
      'The same, but awake and playing with a butterfly on the window.',
      'Show it on its hind legs, reaching for the glass.',
    ],
  },
  {
    description:
      'Both images are presentation slides of quarterly sales figures with a blue title bar and the same four product categories. However, the Source Image uses a vertical bar chart, whereas the Target Image presents the figures as a pie chart with percentage labels.',
    instructions: ['Show the numbers as a pie chart with percentages.', 'The same data, drawn as a pie chart.', 'Turn it into a pie chart instead of bars.'],
  },
  {
    description:
      'Both images show a tennis player dressed in white on a grass court. However, the Source Image captures a forehand from the baseline, whereas the Target Image captures a serve, with the ball tossed high and the racket drawn back behind the head.',
    instructions: [
      'Show them serving, with the ball tossed high.',
      'The same, but mid-serve instead of hitting a forehand.',
      'Catch this at the moment of the serve toss.',
    ],
  },
  {
    description:
      'Both images show a vehicle parked on a gravel road in a pine forest with mountains behind. However, the Source Image shows a silver pickup truck, whereas the Target Image shows a vintage orange camper van with its side door open.',
    instructions: [
      'Replace the truck with a vintage orange camper van.',
      'A retro camper van parked there instead, door open.',
      'Same spot, but an old orange van with its side door open.',
    ],
  },
  {
    description:
      'Both images show rolling green hills with a winding river and a small village of red-roofed houses. However, the Source Image is a realistic aerial photograph, whereas the Target Image is a pixel-art illustration with a limited palette of greens and blues.',
    instructions: ['Make it pixel art with a limited palette.', 'This landscape as a retro video game scene.', 'Render it in an 8-bit pixel style.'],
  },
  {
    description:
      'Both images are flat icons of a national flag made of three vertical stripes. However, the Source Image shows the French flag in blue, white and red, whereas the Target Image shows the Italian flag in green, white and red.',
    instructions: [
      'Change the colours to green, white and red.',
      'The Italian version of it.',
      'The same layout, but with a green stripe in place of the blue one.',
    ],
  },
  {
    description:
      'Both images are filled by a tight spiral in warm orange and brown tones, curling toward a dark centre. However, the Source Image is a close-up of a cut nautilus shell, whereas the Target Image is a view straight down a spiral staircase in an old stone tower.',
    instructions: [
      'Find a staircase that looks like this from overhead.',
      'The same curl, but made of stone steps seen from above.',
      'Keep this shape, make it architecture instead of a shell.',
    ],
  },
  {
    description:
      'Both images show a bowl of ramen with a soft-boiled egg, sliced pork and spring onions on a dark wooden table. However, the Source Image is brightly lit from above with no steam, whereas the Target Image is lit by a warm side lamp, with steam rising and chopsticks lifting noodles.',
    instructions: [
      'Add rising steam and chopsticks lifting noodles.',
      'This under warm, moody side lighting.',
      'Show it steaming hot, with someone picking up noodles.',
    ],
  },
  {
    description:
      'Both images show the cover of a paperback novel with a dark silhouette of a lighthouse on a teal background. However, the Source Image has the title in English along the top, whereas the Target Image is a Japanese edition, with the title in vertical Japanese characters and a red band across the bottom.',
    instructions: [
      'The Japanese edition of it, with a red band at the bottom.',
      'The same cover with the title written vertically in Japanese.',
      'Find its Japanese-language version.',
    ],
  },
  {
    description:
      'Both images show a small bird perched on a thin branch against a blurred green background. However, the Source Image shows a European robin with an orange breast, whereas the Target Image shows a blue tit with a yellow belly and a blue cap, holding a seed in its beak.',
    instructions: [
      'A blue tit there instead, with a seed in its beak.',
      'Swap it for one with a yellow belly and a blue cap.',
      'The same pose, but a blue tit holding a seed.',
    ],
  },
  {
    description:
      "Both images show tall shelves against a white-painted brick wall with potted plants on the top shelf. However, the Source Image's shelves are packed with books, whereas the Target Image's shelves are almost empty, holding only a few plants and a framed photo.",
    instructions: ['Clear it out, leaving only a few plants and a photo.', 'The same, but nearly empty.', 'Remove all the books from these.'],
  },
  {
    description:
      'Both images show a young woman with curly red hair standing on a path in a park. However, the Source Image shows her in a white T-shirt and jeans on a summer day, whereas the Target Image shows her in a long camel coat, a black beret and ankle boots, with fallen leaves on the ground.',
    instructions: [
      'Dress her in a camel coat, a black beret and boots.',
      'The same person in autumn clothes among fallen leaves.',
      'Put a long coat and a beret on her.',
    ],
  },
  {
    description:
      'Both images show a two-storey house with a gabled roof and a front porch, seen from the street. However, the Source Image is a colour photograph of the finished house, whereas the Target Image is a blue architectural blueprint drawn in white lines with dimensions marked.',
    instructions: ['Show it as a blueprint with measurements.', 'The architectural plan of this.', 'A white-on-blue technical drawing of it.'],
  },
  {
    description:
      'Both images show African elephants walking across a dry savanna at sunset. However, the Source Image shows a single adult elephant, whereas the Target Image shows a herd of seven, including two calves following their mothers.',
    instructions: ['A whole herd of them, with calves.', 'Many more of these, including young ones.', 'Turn the lone one into a family group of seven.'],
  },
  {
    description:
      'Both images show a green sea turtle in clear turquoise water. However, the Source Image shows it resting on a sandy seabed, whereas the Target Image shows it swimming near the surface, with sunbeams cutting through the water and a school of small silver fish around it.',
    instructions: [
      'Show it swimming near the surface with sunbeams.',
      'Surround it with a school of silver fish.',
      'This, swimming among small fish in rays of light.',
    ],
  },
  {
    description:
      'Both images show a pair of white running shoes with a grey stripe on a plain background. However, the Source Image shows them new and spotless from the side, whereas the Target Image shows them muddy and worn, seen from above with the laces untied.',
    instructions: ['Make them muddy and worn, with the laces undone.', 'A top-down view of these after a trail run.', 'The same pair, dirty and well used.'],
  },
  {
    description:
      'Both images are maps of a coastal city with a river running through its centre into a harbour. However, the Source Image is a street map with road names printed in black, whereas the Target Image is a satellite view showing real rooftops, parks and boats in the harbour.',
    instructions: ['Show it as a satellite image.', 'The aerial photo version of this.', 'Swap the drawn map for a real view from above.'],
  },
  {
    description:
      'Both images show a living room with a stone fireplace, a grey sofa and a large window. However, the Source Image is plainly decorated, whereas the Target Image is dressed for Christmas, with a lit tree in the corner, stockings on the mantel and wrapped presents on the rug.',
    instructions: [
      'Decorate it for Christmas with a lit tree and stockings.',
      'This room during the holidays, presents on the rug.',
      'Add a Christmas tree and gifts to it.',
    ],
  },
  {
    description:
      "Both images depict Michelangelo's David. However, the Source Image is a photograph of the marble statue in its gallery, whereas the Target Image is a cartoon sticker of the figure wearing sunglasses and holding a smartphone.",
    instructions: [
      'A cartoon sticker of him in sunglasses with a phone.',
      'Make it a funny sticker holding a smartphone.',
      'A playful cartoon take on this, wearing shades.',
    ],
  },
  {
    description:
      'Both images are abstract compositions of overlapping circles and lines on a cream background. However, the Source Image uses only thin black outlines, whereas the Target Image fills the circles with bright red, blue and yellow, in the style of a Bauhaus poster.',
    instructions: ['Fill them with bright red, blue and yellow.', 'A Bauhaus-style colour version of this.', 'The same shapes, but in solid primary colours.'],
  },
  {
    description:
      'Both images show a green steam locomotive crossing a stone viaduct among rolling hills. However, the Source Image shows it from a distance with a long plume of white smoke, whereas the Target Image is a close view of the engine\'s front, showing its number plate "4472" and the driver leaning out of the cab.',
    instructions: [
      'A close-up of its front with the number 4472.',
      'Get nearer to it, with the driver leaning out.',
      'Show its number plate and cab up close.',
    ],
  },
  {
    description:
      'Both images show a single hand against a plain light-blue background. However, the Source Image shows the hand giving a thumbs-up, whereas the Target Image shows it making a peace sign with two fingers raised.',
    instructions: ['Make it a peace sign.', 'The same, but holding up two fingers in a V.', 'Change the gesture to a peace sign instead of a thumbs-up.'],
  },
  {
    description:
      'Both images are emoji of a waving hand drawn in the same flat style with a thin dark outline. However, the Source Image uses the default yellow colour, whereas the Target Image has a dark brown skin tone and small motion lines beside the fingers.',
    instructions: ['Give it a dark brown skin tone.', 'This one with a darker skin tone and motion lines.', 'The same, but in a dark brown tone.'],
  },
  {
    description:
      'Both images show a snow-capped mountain with a sharp, pointed summit under a clear sky. However, the Source Image is taken from a lake shore with the peak reflected in still water, whereas the Target Image is taken from a plane window, with the wing in view and clouds below the summit.',
    instructions: [
      'Photograph it from a plane window, with the wing in view.',
      'See this from the air, above the clouds.',
      'An aerial view of it with clouds beneath the peak.',
    ],
  },
  {
    description:
      'Both images show a large indoor market hall under a high arched glass roof. However, the Source Image is crowded with shoppers at fruit and vegetable stalls, whereas the Target Image is empty and dim after closing, with shutters pulled down and chairs stacked on tables.',
    instructions: ['Show it empty after closing time.', 'The same place at night with the shutters down.', 'Remove the people and close all the stalls.'],
  },
  {
    description:
      'Both images are smartphone screenshots of a weather app with a city name at the top and a seven-day forecast below. However, the Source Image shows "Paris, 24°" with a sun icon on a light background, whereas the Target Image shows "Oslo, -3°" with a snowflake icon and a dark blue theme.',
    instructions: [
      'Make it show Oslo at -3° with a snowflake icon.',
      'The same app, but a cold forecast on a dark blue theme.',
      'Switch it to a snowy day in Oslo.',
    ],
  },
  {
    description:
      'Both images are macro photographs of a butterfly resting on a flower, with a softly blurred background. However, the Source Image shows a monarch with orange and black wings on a purple coneflower, whereas the Target Image shows a blue morpho with iridescent wings spread open on a white orchid.',
    instructions: [
      'A blue morpho instead, wings open on a white orchid.',
      'The same kind of shot, but with iridescent blue wings.',
      'Swap it for a bright blue one on an orchid.',
    ],
  },
  {
    description:
      'Both images show a tall glass of iced coffee with a striped paper straw on a café table by the window. However, the Source Image shows plain black coffee over ice, whereas the Target Image has milk swirling into the coffee and is topped with whipped cream and a caramel drizzle.',
    instructions: [
      'Add milk swirling through it and whipped cream on top.',
      'This with caramel drizzle and cream.',
      'A creamier version of it, topped with whipped cream.',
    ],
  },
];
