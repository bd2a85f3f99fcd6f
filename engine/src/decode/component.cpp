// Placeholder translation unit so the component library exists before its sources land.
